#include "job_command.h"

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <deque>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedattn/common/files.h"
#include "fedattn/common/status_macros.h"
#include "fedattn/coordinator/federation_config.h"
#include "fedattn/coordinator/provision.h"
#include "fedattn/models/job_spec.h"
#include "fedattn/rpc/tensor_stream.h"
#include "fedattn/tensor/model_digest.h"
#include "fedattn/tensor/safetensors.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "util/temp_dir.h"

namespace fedattn::cli {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;

TensorBuffer Tensor(const std::string& name, std::vector<int64_t> shape, uint8_t seed) {
  TensorBuffer t{name, DType::kF32, std::move(shape), {}};
  t.data.resize(*NumElements(t.shape) * 4);
  for (size_t i = 0; i < t.data.size(); ++i) t.data[i] = static_cast<uint8_t>(seed + 31 * i);
  return t;
}

std::vector<TensorBuffer> Model() {
  return {Tensor("encoder.layer.0.attention.qkv.weight", {24, 8}, 1), Tensor("head.bias", {2}, 2),
          Tensor("head.weight", {2, 8}, 3)};
}

std::string ModelHash() { return crypto::ToHex(ModelDigest(Model())); }

v1::RoundSiteInfo* AddSite(v1::RoundInfo* round, const std::string& name, const std::string& status, double spent = 0,
                           double cumulative = 0, const std::string& reason = "") {
  v1::RoundSiteInfo* site = round->add_sites();
  site->set_site(name);
  site->set_status(status);
  site->set_reason(reason);
  site->set_epsilon_spent(spent);
  site->set_epsilon_cumulative(cumulative);
  return site;
}

// A job in its third round: round 1 with everyone, round 2 with hospital-c refusing over its
// cap, a first attempt at round 3 that failed, and round 3 training again.
v1::JobInfo ExampleJob() {
  v1::JobInfo job;
  job.set_job_id("job-7f3a");
  job.set_name("wdbc-demo");
  job.set_state("running");
  job.set_rounds(10);
  job.set_committed_rounds(2);
  job.set_submitted_unix_ms(1'700'000'000'000);
  job.set_submitted_by("operator");
  v1::RoundInfo* r1 = job.add_round_history();
  r1->set_round(1);
  r1->set_state("committed");
  r1->set_started_unix_ms(1'700'000'001'000);
  (*r1->mutable_validation_metrics())["loss"] = 0.23456;
  (*r1->mutable_validation_metrics())["accuracy"] = 0.91234;
  (*r1->mutable_train_metrics())["loss"] = 0.31;
  r1->set_model_sha256(ModelHash());
  for (const char* site : {"hospital-a", "hospital-b", "hospital-c"}) AddSite(r1, site, "contributed", 0.5, 0.5);
  v1::RoundInfo* r2 = job.add_round_history();
  r2->set_round(2);
  r2->set_state("committed");
  r2->set_started_unix_ms(1'700'000'002'000);
  (*r2->mutable_validation_metrics())["accuracy"] = 0.93;
  (*r2->mutable_validation_metrics())["zeta"] = 1;
  r2->set_model_sha256(ModelHash());
  AddSite(r2, "hospital-a", "contributed", 0.4, 0.8);
  AddSite(r2, "hospital-b", "contributed", 0.4, 0.8);
  AddSite(r2, "hospital-c", "refused", 0, 0, "epsilon would reach 3.2, above the site's cap 3.0");
  v1::RoundInfo* r3 = job.add_round_history();
  r3->set_round(3);
  r3->set_state("failed");
  r3->set_started_unix_ms(1'700'000'003'000);
  r3->set_error("only 1 site trained, min_sites is 2");
  AddSite(r3, "hospital-a", "contributed");
  AddSite(r3, "hospital-b", "dropped", 0, 0, "missed the training deadline");
  v1::RoundInfo* r3b = job.add_round_history();
  r3b->set_round(3);
  r3b->set_state("training");
  r3b->set_started_unix_ms(1'700'000'004'000);
  for (const char* site : {"hospital-a", "hospital-b"}) AddSite(r3b, site, "selected");
  return job;
}

TEST(JobCommandTest, ListShowsEveryJob) {
  v1::ListJobsResponse jobs;
  *jobs.add_jobs() = ExampleJob();
  v1::JobInfo* other = jobs.add_jobs();
  other->set_job_id("job-0001");
  other->set_name("a-much-longer-job-name");
  other->set_state("completed");
  other->set_rounds(5);
  other->set_committed_rounds(5);
  const std::string table = FormatJobList(jobs);
  EXPECT_THAT(table, ContainsRegex("JOB +NAME +STATE +ROUNDS +SUBMITTED \\(UTC\\) +BY"));
  EXPECT_THAT(table, ContainsRegex("job-7f3a +wdbc-demo +running +2/10 +2023-11-14 22:13:20Z +operator"));
  EXPECT_THAT(table, ContainsRegex("job-0001 +a-much-longer-job-name +completed +5/5 +-"));
  EXPECT_EQ(FormatJobList(v1::ListJobsResponse()), "no job has been submitted yet\n");
}

TEST(JobCommandTest, DetailShowsRoundsProblemsAndPrivacy) {
  const std::string detail = FormatJobDetail(ExampleJob());
  EXPECT_THAT(detail, HasSubstr("job job-7f3a 'wdbc-demo': running, 2/10 rounds committed\n"));
  EXPECT_THAT(detail, HasSubstr("submitted 2023-11-14 22:13:20Z by operator\n"));
  EXPECT_THAT(detail, Not(HasSubstr("finished")));
  // Accuracy before loss, then the rest by name; sites contributed over selected.
  EXPECT_THAT(detail, ContainsRegex("\n1 +committed +3/3 +accuracy=0.9123 loss=0.2346 +loss=0.31\n"));
  EXPECT_THAT(detail, ContainsRegex("\n2 +committed +2/3 +accuracy=0.93 zeta=1\n"));
  EXPECT_THAT(detail, HasSubstr("hospital-c refused: epsilon would reach 3.2, above the site's cap 3.0\n"));
  EXPECT_THAT(detail, ContainsRegex("\n3 +failed +1/2\n +round failed: only 1 site trained, min_sites is 2\n"
                                    " +hospital-b dropped: missed the training deadline\n"));
  EXPECT_THAT(detail, ContainsRegex("\n3 +training +0/2\n"));
  // The latest cumulative epsilon per site, with the number of releases it composes.
  EXPECT_THAT(detail, ContainsRegex("SITE +EPSILON +RELEASES +AS OF ROUND"));
  EXPECT_THAT(detail, ContainsRegex("hospital-a +0.8 +2 +2\n"));
  EXPECT_THAT(detail, ContainsRegex("hospital-c +0.5 +1 +1\n"));
}

TEST(JobCommandTest, DetailOfAFailedJobSaysWhy) {
  v1::JobInfo job;
  job.set_job_id("job-1");
  job.set_state("failed");
  job.set_rounds(3);
  job.set_finished_unix_ms(1'700'000'060'000);
  job.set_error("the model file changed after submission");
  const std::string detail = FormatJobDetail(job);
  EXPECT_THAT(detail, HasSubstr("finished  2023-11-14 22:14:20Z\n"));
  EXPECT_THAT(detail, HasSubstr("error: the model file changed after submission\n"));
  EXPECT_THAT(detail, HasSubstr("no round has started yet\n"));
}

TEST(JobCommandTest, JsonKeepsProtoFieldNamesAndDefaults) {
  v1::JobInfo job = ExampleJob();
  job.set_committed_rounds(0);
  const nlohmann::json json = nlohmann::json::parse(ToJson(job));
  EXPECT_EQ(json["job_id"], "job-7f3a");
  EXPECT_EQ(json["committed_rounds"], "0");  // 64-bit integers are strings in proto3 JSON
  EXPECT_EQ(json["round_history"][1]["sites"][2]["reason"], "epsilon would reach 3.2, above the site's cap 3.0");
  EXPECT_EQ(json["round_history"][0]["validation_metrics"]["accuracy"], 0.91234);
  EXPECT_EQ(json["error"], "");
}

TEST(JobCommandTest, RoundLines) {
  const v1::JobInfo job = ExampleJob();
  EXPECT_EQ(FormatRoundLine(job, job.round_history(0)),
            "round 1/10 committed: validation accuracy=0.9123 loss=0.2346; train loss=0.31; sites 3/3 contributed");
  EXPECT_EQ(FormatRoundLine(job, job.round_history(1)),
            "round 2/10 committed: validation accuracy=0.93 zeta=1; sites 2/3 contributed (hospital-c refused: "
            "epsilon would reach 3.2, above the site's cap 3.0)");
  EXPECT_EQ(FormatRoundLine(job, job.round_history(2)), "round 3 failed: only 1 site trained, min_sites is 2");
}

// ---------------------------------------------------------------------------------------------
// A scripted admin service in the process.

class FakeJobAdmin : public JobAdmin {
 public:
  absl::StatusOr<std::string> SubmitJob(const std::string& job_yaml) override {
    submitted.push_back(job_yaml);
    return submit_result;
  }
  // Pops the scripted answers; the last one repeats.
  absl::StatusOr<v1::JobInfo> GetJob(const std::string& job_id) override {
    ++get_calls;
    asked.push_back(job_id);
    if (jobs.empty()) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
    absl::StatusOr<v1::JobInfo> next = jobs.front();
    if (jobs.size() > 1) jobs.pop_front();
    return next;
  }
  absl::StatusOr<v1::ListJobsResponse> ListJobs() override { return list; }
  absl::StatusOr<v1::JobInfo> CancelJob(const std::string& job_id) override {
    cancelled.push_back(job_id);
    v1::JobInfo job = ExampleJob();
    job.set_state("cancelled");
    return job;
  }
  absl::Status ExportModel(const std::string& job_id, uint64_t round,
                           const std::function<absl::Status(const v1::TensorChunk&)>& consume) override {
    exports.emplace_back(job_id, round);
    for (const v1::TensorChunk& chunk : chunks) RETURN_IF_ERROR(consume(chunk));
    return export_status;
  }

  absl::StatusOr<std::string> submit_result = std::string("job-new");
  std::vector<std::string> submitted;
  std::deque<absl::StatusOr<v1::JobInfo>> jobs;
  std::vector<std::string> asked;
  int get_calls = 0;
  v1::ListJobsResponse list;
  std::vector<std::string> cancelled;
  std::vector<v1::TensorChunk> chunks;
  absl::Status export_status;
  std::vector<std::pair<std::string, uint64_t>> exports;
};

v1::JobInfo WithState(v1::JobInfo job, const std::string& state, int history) {
  job.set_state(state);
  while (job.round_history_size() > history) job.mutable_round_history()->RemoveLast();
  return job;
}

struct WaitRun {
  int code = -1;
  std::string out, err;
  absl::Duration waited;
};

WaitRun RunWait(FakeJobAdmin& admin, WaitOptions options) {
  FakeClock clock;
  const absl::Time start = clock.Now();
  std::ostringstream out, err;
  WaitRun run;
  run.code = WaitForJob(
      admin, "job-7f3a", options, clock, [&clock](absl::Duration d) { clock.Advance(d); }, out, err);
  run.out = out.str();
  run.err = err.str();
  run.waited = clock.Now() - start;
  return run;
}

TEST(JobWaitTest, PrintsEachCommittedRoundOnceAndExitsZeroWhenCompleted) {
  FakeJobAdmin admin;
  const v1::JobInfo job = ExampleJob();
  admin.jobs = {WithState(job, "queued", 0), WithState(job, "running", 1), WithState(job, "running", 1),
                WithState(job, "running", 3), WithState(job, "completed", 4)};
  const WaitRun run = RunWait(admin, WaitOptions{});
  EXPECT_EQ(run.code, kWaitCompleted);
  EXPECT_EQ(run.out,
            "round 1/10 committed: validation accuracy=0.9123 loss=0.2346; train loss=0.31; sites 3/3 contributed\n"
            "round 2/10 committed: validation accuracy=0.93 zeta=1; sites 2/3 contributed (hospital-c refused: "
            "epsilon would reach 3.2, above the site's cap 3.0)\n"
            "round 3 failed: only 1 site trained, min_sites is 2\n"
            "job job-7f3a completed: 2/10 rounds committed\n");
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(admin.get_calls, 5);
  EXPECT_EQ(run.waited, absl::Seconds(8));  // four default intervals of the fake clock
}

TEST(JobWaitTest, FailedJobExitsOneWithTheReason) {
  FakeJobAdmin admin;
  v1::JobInfo job = WithState(ExampleJob(), "failed", 2);
  job.set_error("round 3 failed 3 times: fewer than min_sites (2) trained");
  admin.jobs = {job};
  const WaitRun run = RunWait(admin, WaitOptions{});
  EXPECT_EQ(run.code, kWaitJobFailed);
  EXPECT_THAT(run.out, HasSubstr("round 2/10 committed"));
  EXPECT_EQ(run.err,
            "job job-7f3a failed after 2/10 rounds: round 3 failed 3 times: fewer than min_sites (2) trained\n");
}

TEST(JobWaitTest, CancelledJobExitsOne) {
  FakeJobAdmin admin;
  admin.jobs = {WithState(ExampleJob(), "running", 1), WithState(ExampleJob(), "cancelled", 2)};
  const WaitRun run = RunWait(admin, WaitOptions{});
  EXPECT_EQ(run.code, kWaitJobFailed);
  EXPECT_EQ(run.err, "job job-7f3a was cancelled after 2/10 rounds\n");
}

TEST(JobWaitTest, TimesOutWithExitTwo) {
  FakeJobAdmin admin;
  admin.jobs = {WithState(ExampleJob(), "running", 1)};
  WaitOptions options;
  options.timeout = absl::Seconds(5);
  options.interval = absl::Seconds(2);
  const WaitRun run = RunWait(admin, options);
  EXPECT_EQ(run.code, kWaitTimedOut);
  EXPECT_EQ(run.err, "timed out after 5s waiting for job job-7f3a (running, 2/10 rounds committed)\n");
  EXPECT_EQ(run.waited, absl::Seconds(5));  // the last sleep is cut to the deadline
  EXPECT_EQ(admin.get_calls, 4);            // at 0, 2, 4 and 5 s
  EXPECT_EQ(run.out,
            "round 1/10 committed: validation accuracy=0.9123 loss=0.2346; train loss=0.31; sites 3/3 "
            "contributed\n");  // once
}

TEST(JobWaitTest, ProgressLinesFollowTheRoundInFlight) {
  FakeJobAdmin admin;
  v1::JobInfo trained = ExampleJob();  // round 3 (retried) in flight: two sites selected
  trained.mutable_round_history(3)->mutable_sites(0)->set_status("trained");
  v1::JobInfo refused = trained;
  refused.mutable_round_history(3)->mutable_sites(1)->set_status("refused");
  admin.jobs = {ExampleJob(), ExampleJob(), trained, refused, WithState(refused, "completed", 2)};
  WaitOptions options;
  options.progress = WaitProgress::kLines;
  const WaitRun run = RunWait(admin, options);
  EXPECT_EQ(run.code, kWaitCompleted);
  // A line per change, not per poll.
  EXPECT_EQ(run.err,
            "round 3/10 training: 0/2 sites trained\n"
            "round 3/10 training: 1/2 sites trained\n"
            "round 3/10 training: 1/2 sites trained, 1 refused\n");
  EXPECT_THAT(run.out, HasSubstr("job job-7f3a completed"));
}

TEST(JobWaitTest, ProgressBarRedrawsInPlaceAndIsClearedBeforeRoundLines) {
  FakeJobAdmin admin;
  v1::JobInfo job = ExampleJob();
  job.mutable_round_history(3)->set_started_unix_ms(absl::ToUnixMillis(FakeClock().Now()) - 5000);
  admin.jobs = {WithState(job, "running", 4), WithState(job, "completed", 2)};
  WaitOptions options;
  options.progress = WaitProgress::kBar;
  const WaitRun run = RunWait(admin, options);
  EXPECT_EQ(run.code, kWaitCompleted);
  EXPECT_EQ(run.err, "\r\x1b[Kround 3/10 training: 0/2 sites trained (5s)\r\x1b[K");
}

TEST(JobWaitTest, FormatsRoundProgress) {
  v1::JobInfo job = ExampleJob();
  EXPECT_EQ(FormatRoundProgress(job, job.round_history(2)), "round 3/10 failed: 1/2 sites trained, 1 dropped");
  v1::RoundInfo init;
  init.set_state("training");
  EXPECT_EQ(FormatRoundProgress(job, init), "round 0 (initial model) training: 0/0 sites trained");
}

TEST(JobWaitTest, UnknownJobExitsThree) {
  FakeJobAdmin admin;
  const WaitRun run = RunWait(admin, WaitOptions{});
  EXPECT_EQ(run.code, kWaitCannotFollow);
  EXPECT_EQ(run.err, "fedattn job wait: job job-7f3a: no job 'job-7f3a'\n");
}

TEST(JobWaitTest, KeepsWaitingWhileTheCoordinatorIsUnreachable) {
  FakeJobAdmin admin;
  const absl::Status down = absl::UnavailableError("cannot connect to 127.0.0.1:50051: Connection refused");
  admin.jobs = {WithState(ExampleJob(), "running", 1), down, down, down, WithState(ExampleJob(), "completed", 2)};
  const WaitRun run = RunWait(admin, WaitOptions{});
  EXPECT_EQ(run.code, kWaitCompleted);
  EXPECT_EQ(run.err,
            "still waiting for job job-7f3a; the coordinator is unreachable: cannot connect to 127.0.0.1:50051: "
            "Connection refused\n"
            "coordinator reachable again\n");  // said once, not per poll
  EXPECT_THAT(run.out, HasSubstr("round 2/10 committed"));
}

TEST(JobWaitTest, TimesOutWhenTheCoordinatorNeverAnswers) {
  FakeJobAdmin admin;
  admin.jobs = {absl::DeadlineExceededError("Deadline Exceeded")};
  WaitOptions options;
  options.timeout = absl::Seconds(3);
  const WaitRun run = RunWait(admin, options);
  EXPECT_EQ(run.code, kWaitTimedOut);
  EXPECT_THAT(run.err, HasSubstr("timed out after 3s waiting for job job-7f3a\n"));
}

// ---------------------------------------------------------------------------------------------
// Model export.

std::vector<v1::TensorChunk> Chunks(const std::vector<TensorBuffer>& tensors, size_t chunk_bytes = 100) {
  std::vector<v1::TensorChunk> chunks;
  auto chunker = rpc::TensorChunker::Create(tensors, chunk_bytes);
  EXPECT_TRUE(chunker.ok());
  v1::TensorChunk chunk;
  while (chunker->Next(&chunk)) chunks.push_back(chunk);
  return chunks;
}

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    admin_.jobs = {ExampleJob()};
    admin_.chunks = Chunks(Model());
  }
  FakeJobAdmin admin_;
  fedattn::testing::TempDir dir_;
};

TEST_F(ExportTest, WritesTheLatestCommittedRoundAsSafetensors) {
  const std::filesystem::path path = dir_ / "model.safetensors";
  auto exported = ExportJobModel(admin_, "job-7f3a", std::nullopt, path);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->round, 2u);  // round 3 is not committed
  EXPECT_EQ(exported->tensors, 3u);
  EXPECT_EQ(exported->bytes, (24 * 8 + 2 + 16) * 4u);
  ASSERT_EQ(admin_.exports.size(), 1u);
  EXPECT_EQ(admin_.exports[0], std::make_pair(std::string("job-7f3a"), uint64_t{2}));  // asks for the resolved round
  auto file = LoadSafetensors(path);  // verifies the file's own checksum
  ASSERT_TRUE(file.ok()) << file.status();
  const std::vector<TensorBuffer> expected = Model();
  ASSERT_EQ(file->tensors.size(), expected.size());
  for (const TensorBuffer& tensor : expected) {
    auto it = std::find_if(file->tensors.begin(), file->tensors.end(),
                           [&](const TensorBuffer& t) { return t.name == tensor.name; });
    ASSERT_NE(it, file->tensors.end()) << tensor.name;
    EXPECT_EQ(it->shape, tensor.shape);
    EXPECT_EQ(it->data, tensor.data);
  }
  EXPECT_EQ(file->metadata["fedattn.job_id"], "job-7f3a");
  EXPECT_EQ(file->metadata["fedattn.round"], "2");
  EXPECT_EQ(file->metadata["fedattn.job_name"], "wdbc-demo");
  EXPECT_EQ(file->metadata["fedattn.model_sha256"], ModelHash());
}

TEST_F(ExportTest, WritesAChosenRound) {
  auto exported = ExportJobModel(admin_, "job-7f3a", 1, dir_ / "r1.safetensors");
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(exported->round, 1u);
  EXPECT_EQ(LoadSafetensors(dir_ / "r1.safetensors")->metadata["fedattn.round"], "1");
}

TEST_F(ExportTest, RefusesAModelThatIsNotTheCommittedOne) {
  // Every tensor intact, but not the model the round committed (a different model, or the
  // tensors in another order).
  admin_.chunks = Chunks({Model()[1], Model()[0], Model()[2]});
  auto exported = ExportJobModel(admin_, "job-7f3a", 1, dir_ / "m.safetensors");
  EXPECT_EQ(exported.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(exported.status().message()),
              HasSubstr(absl::StrCat("model of job job-7f3a round 1: the model received hashes to ")));
  EXPECT_THAT(std::string(exported.status().message()), HasSubstr("not to the round's committed model " + ModelHash()));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "m.safetensors"));
}

TEST_F(ExportTest, RefusesACorruptedStreamAndWritesNothing) {
  const std::filesystem::path path = dir_ / "model.safetensors";
  ASSERT_TRUE(WriteFileAtomic(path, "an older export").ok());
  (*admin_.chunks[1].mutable_data())[5] ^= 0x10;  // inside the first tensor
  auto exported = ExportJobModel(admin_, "job-7f3a", std::nullopt, path);
  EXPECT_EQ(exported.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      std::string(exported.status().message()),
      HasSubstr("model of job job-7f3a round 2: tensor 'encoder.layer.0.attention.qkv.weight': SHA-256 mismatch"));
  EXPECT_THAT(std::string(exported.status().message()), HasSubstr("nothing written to " + path.string()));
  EXPECT_EQ(*ReadFile(path), "an older export");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir_.path()), {}), 1);  // no temporary left
}

TEST_F(ExportTest, RefusesATruncatedStream) {
  admin_.chunks = Chunks(Model(), 16);
  admin_.chunks.pop_back();  // the last tensor (4 chunks) never ends
  auto exported = ExportJobModel(admin_, "job-7f3a", std::nullopt, dir_ / "model.safetensors");
  EXPECT_EQ(exported.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(exported.status().message()), HasSubstr("stream ended inside tensor 'head.weight'"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "model.safetensors"));
}

TEST_F(ExportTest, ReportsAStreamThatBreaks) {
  admin_.chunks.resize(2);
  admin_.export_status = absl::UnavailableError("Socket closed");
  auto exported = ExportJobModel(admin_, "job-7f3a", std::nullopt, dir_ / "model.safetensors");
  EXPECT_EQ(exported.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(exported.status().message()), HasSubstr("model of job job-7f3a round 2: Socket closed"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "model.safetensors"));
}

TEST_F(ExportTest, NamesMissingRounds) {
  auto not_committed = ExportJobModel(admin_, "job-7f3a", 3, dir_ / "m.safetensors");
  EXPECT_EQ(not_committed.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(not_committed.status().message(), "job job-7f3a has no committed round 3 (2 of 10 committed)");
  admin_.jobs = {WithState(ExampleJob(), "queued", 0)};
  auto none = ExportJobModel(admin_, "job-7f3a", std::nullopt, dir_ / "m.safetensors");
  EXPECT_EQ(none.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(none.status().message(), "job job-7f3a has no committed round yet (it is queued)");
  EXPECT_TRUE(admin_.exports.empty());
}

// ---------------------------------------------------------------------------------------------
// The command line, with the fake behind it.

struct CliRun {
  int code = 0;
  std::string out, err;
};

class JobCliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(WriteFileAtomic(admin_yaml_, "admin: {}\n").ok()); }

  CliRun Run(std::vector<std::string> args) {
    CLI::App app("fedattn", "fedattn");
    app.require_subcommand(1);
    std::ostringstream out, err;
    JobCommandEnv env;
    env.connect = [this](const std::string& config,
                         const std::string& coordinator) -> absl::StatusOr<std::unique_ptr<JobAdmin>> {
      connected_with_ = {config, coordinator};
      if (!connect_error_.ok()) return connect_error_;
      return std::unique_ptr<JobAdmin>(new Forward(&admin_));
    };
    env.out = &out;
    env.err = &err;
    env.clock = &clock_;
    env.sleep = [this](absl::Duration d) { clock_.Advance(d); };
    AddJobCommands(app, env);
    std::vector<std::string> argv = {"fedattn"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<const char*> c_argv;
    for (const std::string& arg : argv) c_argv.push_back(arg.c_str());
    CliRun run;
    try {
      app.parse(static_cast<int>(c_argv.size()), c_argv.data());
    } catch (const CLI::ParseError& e) {
      run.code = e.get_exit_code();
    }
    run.out = out.str();
    run.err = err.str();
    return run;
  }

  // Lends the test's fake to a command, which owns what `connect` returns.
  class Forward : public JobAdmin {
   public:
    explicit Forward(FakeJobAdmin* fake) : fake_(fake) {}
    absl::StatusOr<std::string> SubmitJob(const std::string& yaml) override { return fake_->SubmitJob(yaml); }
    absl::StatusOr<v1::JobInfo> GetJob(const std::string& id) override { return fake_->GetJob(id); }
    absl::StatusOr<v1::ListJobsResponse> ListJobs() override { return fake_->ListJobs(); }
    absl::StatusOr<v1::JobInfo> CancelJob(const std::string& id) override { return fake_->CancelJob(id); }
    absl::Status ExportModel(const std::string& id, uint64_t round,
                             const std::function<absl::Status(const v1::TensorChunk&)>& consume) override {
      return fake_->ExportModel(id, round, consume);
    }

   private:
    FakeJobAdmin* fake_;
  };

  fedattn::testing::TempDir dir_;
  std::string admin_yaml_ = (dir_ / "admin.yaml").string();
  FakeJobAdmin admin_;
  FakeClock clock_;
  absl::Status connect_error_;
  std::pair<std::string, std::string> connected_with_;
};

TEST_F(JobCliTest, StatusListsJobsOrShowsOne) {
  *admin_.list.add_jobs() = ExampleJob();
  CliRun run = Run({"job", "status", "--admin-config", admin_yaml_, "--coordinator", "127.0.0.1:7"});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.out, ContainsRegex("job-7f3a +wdbc-demo +running +2/10"));
  EXPECT_EQ(connected_with_, std::make_pair(admin_yaml_, std::string("127.0.0.1:7")));

  admin_.jobs = {ExampleJob()};
  run = Run({"job", "status", "job-7f3a", "--config", admin_yaml_});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_THAT(run.out, HasSubstr("job job-7f3a 'wdbc-demo': running, 2/10 rounds committed"));

  run = Run({"job", "status", "job-7f3a", "--json", "--config", admin_yaml_});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(nlohmann::json::parse(run.out)["round_history"].size(), 4u);

  run = Run({"job", "status", "--json", "--config", admin_yaml_});
  EXPECT_EQ(nlohmann::json::parse(run.out)["jobs"][0]["name"], "wdbc-demo");
}

TEST_F(JobCliTest, StatusOfAnUnknownJobNamesIt) {
  const CliRun run = Run({"job", "status", "job-nope", "--config", admin_yaml_});
  EXPECT_EQ(run.code, 1);
  EXPECT_EQ(run.err, "fedattn job status: job job-nope: no job 'job-nope'\n");
}

TEST_F(JobCliTest, WaitExitCodes) {
  admin_.jobs = {WithState(ExampleJob(), "completed", 2)};
  EXPECT_EQ(Run({"job", "wait", "job-7f3a", "--config", admin_yaml_}).code, 0);
  admin_.jobs = {WithState(ExampleJob(), "failed", 2)};
  EXPECT_EQ(Run({"job", "wait", "job-7f3a", "--config", admin_yaml_}).code, 1);
  admin_.jobs = {WithState(ExampleJob(), "running", 2)};
  const CliRun timed_out =
      Run({"job", "wait", "job-7f3a", "--timeout", "10", "--interval", "3", "--config", admin_yaml_});
  EXPECT_EQ(timed_out.code, 2);
  EXPECT_THAT(timed_out.err, HasSubstr("timed out after 10s"));
  admin_.jobs.clear();
  EXPECT_EQ(Run({"job", "wait", "job-7f3a", "--config", admin_yaml_}).code, 3);
  connect_error_ = absl::NotFoundError("admin.yaml: no such file");
  EXPECT_EQ(Run({"job", "wait", "job-7f3a", "--config", admin_yaml_}).code, 3);
}

TEST_F(JobCliTest, CancelSaysWhereTheJobStopped) {
  const CliRun run = Run({"job", "cancel", "job-7f3a", "--config", admin_yaml_});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(admin_.cancelled, std::vector<std::string>{"job-7f3a"});
  EXPECT_EQ(run.out, "job job-7f3a is cancelled after 2/10 rounds\n");
}

TEST_F(JobCliTest, ModelExport) {
  admin_.jobs = {ExampleJob()};
  admin_.chunks = Chunks(Model());
  const std::string path = (dir_ / "out.safetensors").string();
  CliRun run = Run({"model", "export", "job-7f3a", "--round", "1", "-o", path, "--config", admin_yaml_});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, absl::StrCat("wrote ", path, ": job job-7f3a round 1, 3 tensors, 0.0 MB\n"));
  EXPECT_TRUE(LoadSafetensors(path).ok());

  (*admin_.chunks.back().mutable_sha256())[0] ^= 1;
  run = Run({"model", "export", "job-7f3a", "-o", (dir_ / "bad.safetensors").string(), "--config", admin_yaml_});
  EXPECT_EQ(run.code, 1);
  EXPECT_THAT(run.err,
              HasSubstr("fedattn model export: model of job job-7f3a round 2: tensor 'head.weight': SHA-256 mismatch"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "bad.safetensors"));
}

TEST_F(JobCliTest, SubmitSendsTheResolvedJobAndPrintsItsId) {
  const std::string job_file =
      (std::filesystem::path(FEDATTN_SOURCE_DIR) / "configs" / "jobs" / "wdbc_plain.yaml").string();
  const CliRun run = Run({"job", "submit", job_file, "--config", admin_yaml_});
  EXPECT_EQ(run.code, 0) << run.err;
  EXPECT_EQ(run.out, "job-new\n");  // only the id on stdout, for scripts
  EXPECT_THAT(run.err, HasSubstr("fedattn job wait job-new"));
  ASSERT_EQ(admin_.submitted.size(), 1u);
  // Self-contained: the referenced model and schema files are inlined.
  auto spec = models::ParseJobSpec(admin_.submitted[0], "submitted");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->name, "wdbc-plain");
  EXPECT_THAT(admin_.submitted[0], Not(HasSubstr("ft_transformer_small.yaml")));
}

TEST_F(JobCliTest, SubmitNamesTheFileOnErrors) {
  const std::filesystem::path bad = dir_ / "bad-job.yaml";
  ASSERT_TRUE(WriteFileAtomic(bad, "job:\n  name: x\n  roundz: 3\n").ok());
  CliRun run = Run({"job", "submit", bad.string(), "--config", admin_yaml_});
  EXPECT_EQ(run.code, 1);
  EXPECT_THAT(run.err, HasSubstr("fedattn job submit: "));
  EXPECT_THAT(run.err, HasSubstr("bad-job.yaml:3"));
  EXPECT_TRUE(admin_.submitted.empty());  // nothing reaches the coordinator

  admin_.submit_result = absl::InvalidArgumentError("the coordinator knows no site that allows model 'x'");
  const std::string job_file =
      (std::filesystem::path(FEDATTN_SOURCE_DIR) / "configs" / "jobs" / "wdbc_plain.yaml").string();
  run = Run({"job", "submit", job_file, "--config", admin_yaml_});
  EXPECT_EQ(run.code, 1);
  EXPECT_EQ(run.err, absl::StrCat("fedattn job submit: submitting ", job_file,
                                  ": the coordinator knows no site that allows model 'x'\n"));
}

TEST_F(JobCliTest, UsageErrors) {
  EXPECT_NE(Run({"job", "wait", "--config", admin_yaml_}).code, 0);                  // no JOB
  EXPECT_NE(Run({"model", "export", "job-7f3a", "--config", admin_yaml_}).code, 0);  // no -o
  EXPECT_NE(Run({"job", "status", "--config", (dir_ / "missing.yaml").string()}).code, 0);
  EXPECT_NE(Run({"job", "wait", "j", "--interval", "0", "--config", admin_yaml_}).code, 0);
  EXPECT_TRUE(admin_.asked.empty());
}

// ---------------------------------------------------------------------------------------------
// The real AdminClient over mutual TLS, against a fake admin service on 127.0.0.1.

class FakeAdminService final : public v1::AdminService::Service {
 public:
  grpc::Status SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request,
                         v1::SubmitJobResponse* response) override {
    submitted = request->job_config();
    response->set_job_id("job-grpc");
    return grpc::Status::OK;
  }
  grpc::Status GetJob(grpc::ServerContext*, const v1::GetJobRequest* request, v1::JobInfo* response) override {
    if (request->job_id() != "job-7f3a") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, absl::StrCat("no job '", request->job_id(), "'"));
    }
    *response = ExampleJob();
    return grpc::Status::OK;
  }
  grpc::Status ListJobs(grpc::ServerContext*, const v1::ListJobsRequest*, v1::ListJobsResponse* response) override {
    *response->add_jobs() = ExampleJob();
    return grpc::Status::OK;
  }
  grpc::Status CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request, v1::JobInfo* response) override {
    response->set_job_id(request->job_id());
    response->set_state("cancelled");
    return grpc::Status::OK;
  }
  grpc::Status ExportModel(grpc::ServerContext*, const v1::ExportModelRequest* request,
                           grpc::ServerWriter<v1::TensorChunk>* writer) override {
    exported_round = request->round();
    for (v1::TensorChunk chunk : Chunks(Model(), 64)) {
      if (corrupt && !chunk.sha256().empty()) (*chunk.mutable_data())[0] ^= 1;
      if (!writer->Write(chunk)) break;
    }
    return grpc::Status::OK;
  }

  std::string submitted;
  uint64_t exported_round = 0;
  bool corrupt = false;
};

class AdminClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    coordinator::FederationConfig config;
    config.name = "job-test";
    config.coordinator.address = "127.0.0.1:0";
    config.sites = {"hospital-a"};
    config.admins = {"operator"};
    ASSERT_TRUE(coordinator::Provision(config, dir_.path(), absl::Now()).ok());
    const std::filesystem::path kit = dir_ / "kits" / "coordinator";
    auto identity = rpc::LoadTlsIdentity({kit / "ca.crt", kit / "coordinator.crt", kit / "coordinator.key", {}});
    ASSERT_TRUE(identity.ok()) << identity.status();
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", rpc::MakeServerCredentials(*identity), &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port, 0);
    auto options = LoadAdminOptions(dir_ / "kits" / "operator" / "admin.yaml");
    ASSERT_TRUE(options.ok()) << options.status();
    options->coordinator.address = absl::StrCat("127.0.0.1:", port);
    auto client = AdminClient::Create(*options);
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::move(client).value();
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  fedattn::testing::TempDir dir_;
  FakeAdminService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<AdminClient> client_;
};

TEST_F(AdminClientTest, JobCallsOverMutualTls) {
  auto id = client_->SubmitJob("job:\n  name: x\n");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "job-grpc");
  EXPECT_EQ(service_.submitted, "job:\n  name: x\n");
  auto job = client_->GetJob("job-7f3a");
  ASSERT_TRUE(job.ok()) << job.status();
  EXPECT_EQ(job->round_history_size(), 4);
  auto missing = client_->GetJob("job-nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "no job 'job-nope'");
  EXPECT_EQ(client_->ListJobs()->jobs_size(), 1);
  EXPECT_EQ(client_->CancelJob("job-9")->state(), "cancelled");
}

TEST_F(AdminClientTest, ExportsOverMutualTls) {
  const std::filesystem::path path = dir_ / "model.safetensors";
  auto exported = ExportJobModel(*client_, "job-7f3a", std::nullopt, path);
  ASSERT_TRUE(exported.ok()) << exported.status();
  EXPECT_EQ(service_.exported_round, 2u);
  auto file = LoadSafetensors(path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->tensors.size(), 3u);

  service_.corrupt = true;
  auto corrupted = ExportJobModel(*client_, "job-7f3a", std::nullopt, dir_ / "bad.safetensors");
  EXPECT_EQ(corrupted.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(corrupted.status().message()), HasSubstr("SHA-256 mismatch"));
  EXPECT_FALSE(std::filesystem::exists(dir_ / "bad.safetensors"));
}

TEST_F(AdminClientTest, ExplainsAnUnreachableCoordinator) {
  server_->Shutdown();
  server_.reset();
  auto job = client_->GetJob("job-7f3a");
  EXPECT_EQ(job.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(job.status().message()), HasSubstr("cannot connect to 127.0.0.1:"));
}

}  // namespace
}  // namespace fedattn::cli
