# Runtime options for sanitizer builds (scripts/test.sh --sanitize, scripts/test.sh --fuzz), sourced
# by bash. Every suppression is listed, with its reason, in the files named here and in
# docs/operations.md ("Sanitizers"); the rule is: only what comes from uninstrumented Debian
# libraries, never our code.
_fedattn_sanitizers_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# halt_on_error: the first report fails the test. Leak checking stays on (LSan, with lsan.supp).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$_fedattn_sanitizers_dir/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:suppressions=$_fedattn_sanitizers_dir/ubsan.supp}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$_fedattn_sanitizers_dir/tsan.supp}
unset _fedattn_sanitizers_dir
