// Bad input at the site service (docs/bad-input.md): the real coordinator in this process, over
// mutual TLS, fed malformed, stale, replayed, oversized and out-of-order messages by hand. Each
// case checks the status code, a message naming the problem, and that the committed model and
// the round records hold only what good sites sent.
#include <grpcpp/client_context.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "util/in_process_federation.h"

namespace fedattn::testing {
namespace {

using ::testing::HasSubstr;

const std::vector<std::string> kSites = {"hospital-a", "hospital-b", "hospital-c"};

std::chrono::system_clock::time_point In(absl::Duration duration) {
  return std::chrono::system_clock::now() + absl::ToChronoMilliseconds(duration);
}

class BadInputTest : public ::testing::Test {
 protected:
  // Submits `job`, has one site send a zero initial model, and collects every site's round-1 task.
  void StartRound(const TinyJob& job) {
    federation_.RegisterAll();
    job_id_ = federation_.Submit(job);
    bool init_sent = false;
    const absl::Time give_up = absl::Now() + absl::Seconds(60);
    while (tasks_.size() < kSites.size() && absl::Now() < give_up) {
      for (const std::string& site : kSites) {
        if (tasks_.count(site)) continue;
        std::optional<v1::Task> task = PullTask(Site(site), site, absl::Milliseconds(300));
        if (!task.has_value()) continue;
        if (task->kind() == "init") {
          ASSERT_FALSE(init_sent);
          ASSERT_TRUE(Upload(Site(site), task->round(), Report(0), ZeroModel(federation_.model_spec())).ok());
          init_sent = true;
        } else {
          tasks_[site] = *task;
        }
      }
    }
    ASSERT_EQ(tasks_.size(), kSites.size()) << "not every site got its round-1 task";
    length_ = federation_.model_spec().NumTrainable();
    LogReleases();
  }

  // Each site's signed ledger entry for round 1, which the coordinator needs before an update.
  void LogReleases() {
    for (const std::string& site : kSites) {
      const grpc::Status logged = LogRelease(Site(site), ReleaseEntry(federation_.Identity(site), job_id_, 1, 1));
      ASSERT_TRUE(logged.ok()) << site << ": " << logged.error_message();
    }
  }

  v1::SiteService::Stub& Site(const std::string& site) { return federation_.Site(site); }
  const v1::RoundRef& Ref(const std::string& site) { return tasks_.at(site).round(); }
  grpc::Status GoodUpload(const std::string& site, float value, int64_t examples) {
    return Upload(Site(site), Ref(site), Report(examples, 0.5), {FlatUpdate(length_, value)});
  }

  // Every trainable value of the committed model (all tensors start at zero).
  void ExpectModelIs(float value) {
    auto model = federation_.ExportModel(job_id_);
    ASSERT_TRUE(model.ok()) << model.status();
    size_t checked = 0;
    for (const TensorBuffer& tensor : *model) {
      ASSERT_EQ(tensor.dtype, DType::kF32) << tensor.name;
      const float* values = reinterpret_cast<const float*>(tensor.data.data());
      for (size_t i = 0; i < tensor.data.size() / sizeof(float); ++i, ++checked) {
        ASSERT_EQ(values[i], value) << tensor.name << "[" << i << "]";
      }
    }
    EXPECT_EQ(checked, static_cast<size_t>(length_));  // trainable: full
  }

  // The statuses the coordinator's audit log records for the round's sites (round_committed).
  std::map<std::string, std::string> AuditedSites(uint64_t round) {
    std::map<std::string, std::string> sites;
    std::ifstream in(federation_.state_dir() / "audit" / "audit.jsonl");
    std::string line;
    while (std::getline(in, line)) {
      const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
      if (record.is_discarded() || record.value("type", "") != "round_committed") continue;
      const nlohmann::json& data = record["data"];
      if (data.value("job", "") != job_id_ || data.value("round", uint64_t{0}) != round) continue;
      for (const nlohmann::json& site : data["sites"]) sites[site["site"]] = site["status"];
    }
    return sites;
  }

  std::map<std::string, v1::RoundSiteInfo> RoundSites(const v1::JobInfo& job, uint64_t round) {
    std::map<std::string, v1::RoundSiteInfo> sites;
    for (const v1::RoundInfo& info : job.round_history()) {
      if (info.round() != round) continue;
      for (const v1::RoundSiteInfo& site : info.sites()) sites[site.site()] = site;
    }
    return sites;
  }

  // Sites a and b send updates of 1 (10 examples) and 3 (30 examples): FedAvg gives 2.5.
  void FinishWithGoodUpdatesAndExpectTheirMean(bool include_c = false) {
    ASSERT_TRUE(GoodUpload("hospital-a", 1.0f, 10).ok());
    ASSERT_TRUE(GoodUpload("hospital-b", 3.0f, 30).ok());
    if (include_c) ASSERT_TRUE(GoodUpload("hospital-c", 2.5f, 40).ok());
    const v1::JobInfo job = federation_.WaitForJob(job_id_, "completed", absl::Seconds(60));
    ASSERT_EQ(job.state(), "completed") << job.error();
    EXPECT_EQ(job.committed_rounds(), 1u);
    ExpectModelIs(2.5f);
  }

  InProcessFederation federation_{kSites, FEDATTN_SOURCE_DIR};
  std::string job_id_;
  std::map<std::string, v1::Task> tasks_;
  int64_t length_ = 0;
};

void ExpectRefused(const grpc::Status& status, grpc::StatusCode code, const std::string& text) {
  EXPECT_EQ(status.error_code(), code) << status.error_message();
  EXPECT_THAT(status.error_message(), HasSubstr(text));
}

TEST_F(BadInputTest, WrongJobRoundOrNonceIsRefusedAndChangesNothing) {
  StartRound(TinyJob{.rounds = 1, .min_sites = 2});
  const std::vector<TensorBuffer> update = {FlatUpdate(length_, 100.0f)};

  v1::RoundRef ref = Ref("hospital-a");
  ref.set_job_id("no-such-job");
  ExpectRefused(Upload(Site("hospital-a"), ref, Report(10), update), grpc::StatusCode::NOT_FOUND, "no-such-job");

  ref = Ref("hospital-a");
  ref.set_round(7);
  ExpectRefused(Upload(Site("hospital-a"), ref, Report(10), update), grpc::StatusCode::FAILED_PRECONDITION,
                "round 7 is not open for site 'hospital-a'");

  ref = Ref("hospital-a");
  ref.set_nonce(std::string(16, 'x'));
  ExpectRefused(Upload(Site("hospital-a"), ref, Report(10), update), grpc::StatusCode::FAILED_PRECONDITION,
                "stale or replayed message from site 'hospital-a'");

  // Another site's round reference (its nonce) is no good either.
  ExpectRefused(Upload(Site("hospital-a"), Ref("hospital-b"), Report(10), update),
                grpc::StatusCode::FAILED_PRECONDITION, "stale or replayed message from site 'hospital-a'");

  // A report of another site's task, or for another round, changes nothing either.
  v1::ReportTaskRequest report;
  *report.mutable_round() = Ref("hospital-b");
  report.set_site_name("hospital-b");
  report.set_outcome(v1::ReportTaskRequest::FAILED);
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(10)));
  v1::ReportTaskResponse response;
  ExpectRefused(Site("hospital-a").ReportTask(&context, report, &response), grpc::StatusCode::PERMISSION_DENIED,
                "the certificate of site 'hospital-a' cannot act as site 'hospital-b'");

  // Nothing above counted: the round holds exactly the good updates.
  report.set_site_name("hospital-c");
  *report.mutable_round() = Ref("hospital-c");
  report.set_reason("test: c leaves");
  grpc::ClientContext leave;
  leave.set_deadline(In(absl::Seconds(10)));
  ASSERT_TRUE(Site("hospital-c").ReportTask(&leave, report, &response).ok());
  FinishWithGoodUpdatesAndExpectTheirMean();
  const auto sites = RoundSites(federation_.GetJob(job_id_), 1);
  EXPECT_EQ(sites.at("hospital-a").status(), "contributed");
  EXPECT_EQ(sites.at("hospital-b").status(), "contributed");
  EXPECT_EQ(sites.at("hospital-c").status(), "failed");
}

TEST_F(BadInputTest, MalformedUpdatesAreRefusedNamingTheProblem) {
  StartRound(TinyJob{.rounds = 1, .min_sites = 3});
  auto& stub = Site("hospital-a");
  const v1::RoundRef ref = Ref("hospital-a");
  const std::string expected = absl::StrCat("expected 'update' F32 [", length_, "]");

  // dtype, shape and name mismatches
  TensorBuffer f16{"update", DType::kF16, {length_}, std::vector<uint8_t>(static_cast<size_t>(length_) * 2)};
  ExpectRefused(Upload(stub, ref, Report(10), {f16}), grpc::StatusCode::INVALID_ARGUMENT, expected);
  ExpectRefused(Upload(stub, ref, Report(10), {FlatUpdate(length_ - 1, 1.0f)}), grpc::StatusCode::INVALID_ARGUMENT,
                expected);
  ExpectRefused(Upload(stub, ref, Report(10), {FlatUpdate(length_, 1.0f, "weights")}),
                grpc::StatusCode::INVALID_ARGUMENT, "upload tensor is 'weights'");
  ExpectRefused(Upload(stub, ref, Report(10), {FlatUpdate(length_, 1.0f), FlatUpdate(4, 1.0f, "extra")}),
                grpc::StatusCode::INVALID_ARGUMENT, "second tensor 'extra'");
  // corrupted bytes (hash mismatch), a stream that ends inside the tensor, bytes past its end
  ExpectRefused(Upload(stub, ref, Report(10), {FlatUpdate(length_, 1.0f)},
                       [](v1::TensorChunk* chunk) {
                         if (chunk->offset() == 0) (*chunk->mutable_data())[0] ^= 1;
                       }),
                grpc::StatusCode::DATA_LOSS, "tensor 'update': SHA-256 mismatch");
  ExpectRefused(Upload(stub, ref, Report(10), {FlatUpdate(length_, 1.0f)},
                       [](v1::TensorChunk* chunk) {
                         if (!chunk->sha256().empty()) chunk->Clear();  // the last chunk loses its name
                       }),
                grpc::StatusCode::INVALID_ARGUMENT, "chunk for tensor '' arrived while 'update' is incomplete");
  {
    // The stream ends (WritesDone) inside the tensor.
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(10)));
    v1::UploadUpdateResponse response;
    auto writer = stub.UploadUpdate(&context, &response);
    v1::UploadUpdateRequest first;
    *first.mutable_round() = ref;
    first.mutable_chunk()->set_name("update");
    first.mutable_chunk()->set_dtype("F32");
    first.mutable_chunk()->add_shape(length_);
    first.mutable_chunk()->set_total_bytes(static_cast<uint64_t>(length_) * 4);
    first.mutable_chunk()->set_data(std::string(64, '\0'));
    writer->Write(first);
    writer->WritesDone();
    ExpectRefused(writer->Finish(), grpc::StatusCode::DATA_LOSS, "stream ended inside tensor 'update'");
  }
  ExpectRefused(Upload(stub, ref, Report(10), {FlatUpdate(length_, 1.0f)},
                       [](v1::TensorChunk* chunk) {
                         if (!chunk->sha256().empty()) chunk->mutable_data()->append(8, '\0');
                       }),
                grpc::StatusCode::INVALID_ARGUMENT, "more than its");
  ExpectRefused(Upload(stub, ref, Report(10), {}), grpc::StatusCode::INVALID_ARGUMENT, "the upload carried no tensor");
  // A header that claims more bytes than its shape holds
  ExpectRefused(Upload(stub, ref, Report(10), {FlatUpdate(length_, 1.0f)},
                       [](v1::TensorChunk* chunk) {
                         if (chunk->offset() == 0) chunk->set_total_bytes(uint64_t{1} << 40);
                       }),
                grpc::StatusCode::INVALID_ARGUMENT, "tensor 'update': total_bytes");
  // One message over the 16 MiB gRPC limit is refused by the transport before any code of ours.
  const grpc::Status oversized = Upload(stub, ref, Report(10), {FlatUpdate(length_, 1.0f)}, [](v1::TensorChunk* chunk) {
    if (chunk->offset() == 0) chunk->mutable_data()->resize(17 << 20);
  });
  EXPECT_EQ(oversized.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << oversized.error_message();

  // None of it counted, and the site may still send its real update.
  FinishWithGoodUpdatesAndExpectTheirMean(/*include_c=*/true);
}

TEST_F(BadInputTest, NonFiniteUpdateIsRejectedAndTheRoundCommitsWithoutIt) {
  StartRound(TinyJob{.rounds = 1, .min_sites = 2});
  TensorBuffer poisoned = FlatUpdate(length_, 0.5f);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(poisoned.data.data() + 3 * sizeof(float), &nan, sizeof(float));
  ExpectRefused(Upload(Site("hospital-c"), Ref("hospital-c"), Report(40, 0.5), {poisoned}),
                grpc::StatusCode::INVALID_ARGUMENT, "round 1: site hospital-c: update holds NaN or Inf at index 3");
  // The site is out of this round: a second try, even finite, is refused.
  ExpectRefused(GoodUpload("hospital-c", 2.5f, 40), grpc::StatusCode::FAILED_PRECONDITION,
                "site 'hospital-c' may not send an update now");
  FinishWithGoodUpdatesAndExpectTheirMean();
  const auto sites = RoundSites(federation_.GetJob(job_id_), 1);
  EXPECT_EQ(sites.at("hospital-c").status(), "failed");
  EXPECT_THAT(sites.at("hospital-c").reason(), HasSubstr("NaN or Inf"));
  // The audit log's record of the commit says the same.
  const std::map<std::string, std::string> audited = AuditedSites(1);
  EXPECT_EQ(audited, (std::map<std::string, std::string>{
                         {"hospital-a", "contributed"}, {"hospital-b", "contributed"}, {"hospital-c", "failed"}}));
}

TEST_F(BadInputTest, InfiniteUpdateIsRejectedToo) {
  StartRound(TinyJob{.rounds = 1, .min_sites = 2});
  TensorBuffer poisoned = FlatUpdate(length_, 0.5f);
  const float inf = std::numeric_limits<float>::infinity();
  std::memcpy(poisoned.data.data() + (length_ - 1) * sizeof(float), &inf, sizeof(float));
  ExpectRefused(Upload(Site("hospital-c"), Ref("hospital-c"), Report(40), {poisoned}),
                grpc::StatusCode::INVALID_ARGUMENT, absl::StrCat("NaN or Inf at index ", length_ - 1));
  FinishWithGoodUpdatesAndExpectTheirMean();
}

TEST_F(BadInputTest, ReplayedUploadIsRefusedAndCountsOnce) {
  StartRound(TinyJob{.rounds = 1, .min_sites = 3});
  ASSERT_TRUE(GoodUpload("hospital-c", 2.5f, 40).ok());
  ExpectRefused(GoodUpload("hospital-c", 2.5f, 40), grpc::StatusCode::FAILED_PRECONDITION,
                "round 1: site 'hospital-c' may not send an update now");
  ASSERT_TRUE(GoodUpload("hospital-a", 1.0f, 10).ok());
  ASSERT_TRUE(GoodUpload("hospital-b", 3.0f, 30).ok());
  const v1::JobInfo job = federation_.WaitForJob(job_id_, "completed", absl::Seconds(60));
  ASSERT_EQ(job.state(), "completed") << job.error();
  ExpectModelIs(2.5f);  // (1*10 + 3*30 + 2.5*40) / 80: c counted once
  // After the round, the same message is stale.
  ExpectRefused(GoodUpload("hospital-c", 2.5f, 40), grpc::StatusCode::FAILED_PRECONDITION,
                absl::StrCat("job '", job_id_, "'"));
}

TEST_F(BadInputTest, BadInitialModelIsRefusedNamingTheTensorAndAnotherSiteIsAsked) {
  federation_.RegisterAll();
  job_id_ = federation_.Submit(TinyJob{.rounds = 1, .min_sites = 3});
  const models::ModelSpec& spec = federation_.model_spec();
  int bad_attempts = 0;
  std::string good_site;
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (good_site.empty() && absl::Now() < give_up) {
    for (const std::string& site : kSites) {
      std::optional<v1::Task> task = PullTask(Site(site), site, absl::Milliseconds(300));
      if (!task.has_value() || task->kind() != "init") continue;
      std::vector<TensorBuffer> model = ZeroModel(spec);
      if (bad_attempts == 0) {
        // A tensor of the wrong shape: named in the answer.
        const std::string name = model[0].name;
        model[0].shape.push_back(1);
        ExpectRefused(Upload(Site(site), task->round(), Report(0), model), grpc::StatusCode::INVALID_ARGUMENT,
                      absl::StrCat("initial model from site '", site, "'"));
        ++bad_attempts;
      } else {
        // More than the job's model holds: refused before it is kept in memory. The same site
        // may then send its real model for the same task.
        std::vector<TensorBuffer> bigger = model;
        bigger.push_back(FlatUpdate(1 << 16, 0.0f, "smuggled"));
        ExpectRefused(Upload(Site(site), task->round(), Report(0), bigger), grpc::StatusCode::RESOURCE_EXHAUSTED,
                      "more than");
        ++bad_attempts;
        ASSERT_TRUE(Upload(Site(site), task->round(), Report(0), model).ok());
        good_site = site;
      }
      break;
    }
  }
  ASSERT_EQ(bad_attempts, 2);
  ASSERT_FALSE(good_site.empty());
  // The round starts from the good (zero) model.
  for (const std::string& site : kSites) {
    std::optional<v1::Task> task = PullTask(Site(site), site);
    ASSERT_TRUE(task.has_value()) << site;
    ASSERT_EQ(task->kind(), "train");
    tasks_[site] = *task;
  }
  length_ = spec.NumTrainable();
  LogReleases();
  FinishWithGoodUpdatesAndExpectTheirMean(/*include_c=*/true);
}

TEST_F(BadInputTest, SecAggMessagesOutOfOrderAreRefused) {
  StartRound(TinyJob{.rounds = 1, .min_sites = 3, .secagg = true});
  auto step = [&](const std::string& site, const std::function<void(v1::SecAggStepRequest*)>& fill) {
    v1::SecAggStepRequest request;
    *request.mutable_round() = Ref(site);
    request.set_site_name(site);
    request.set_wait_ms(0);
    fill(&request);
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(10)));
    v1::SecAggStepResponse response;
    return Site(site).SecAggStep(&context, request, &response);
  };
  ExpectRefused(step("hospital-a", [](v1::SecAggStepRequest* r) { r->mutable_share_keys()->set_sender(0); }),
                grpc::StatusCode::FAILED_PRECONDITION, "round 1: key sharing is closed for site 'hospital-a'");
  ExpectRefused(step("hospital-a", [](v1::SecAggStepRequest* r) { r->mutable_unmask()->set_sender(0); }),
                grpc::StatusCode::FAILED_PRECONDITION, "round 1: unmasking is closed for site 'hospital-a'");
  // A masked update before the keys were shared:
  TensorBuffer masked{"masked", DType::kU32, {length_}, std::vector<uint8_t>(static_cast<size_t>(length_) * 4)};
  ExpectRefused(Upload(Site("hospital-a"), Ref("hospital-a"), Report(10), {masked}),
                grpc::StatusCode::FAILED_PRECONDITION, "round 1: site 'hospital-a' may not send a masked update now");
  // A plain update in a securely aggregated round:
  ExpectRefused(GoodUpload("hospital-a", 1.0f, 10), grpc::StatusCode::FAILED_PRECONDITION,
                "may not send a masked update now");
  // An advertisement without training examples, and one for another site's number:
  ExpectRefused(step("hospital-a",
                     [](v1::SecAggStepRequest* r) {
                       r->mutable_advertisement()->set_sender(0);
                       r->mutable_report()->set_num_examples(0);
                     }),
                grpc::StatusCode::INVALID_ARGUMENT, "site 'hospital-a' reports 0 training examples");
  // Acting for another site:
  ExpectRefused(step("hospital-a", [](v1::SecAggStepRequest* r) { r->set_site_name("hospital-b"); }),
                grpc::StatusCode::PERMISSION_DENIED, "cannot act as site 'hospital-b'");
  // None of it moved the round on or marked a site.
  const auto sites = RoundSites(federation_.GetJob(job_id_), 1);
  for (const auto& [name, site] : sites) {
    EXPECT_NE(site.status(), "trained") << name;
    EXPECT_NE(site.status(), "contributed") << name;
  }
}

TEST_F(BadInputTest, StalledUploadIsCancelledWhenTheRoundEnds) {
  StartRound(TinyJob{.rounds = 1, .min_sites = 2, .train_s = 3});
  // hospital-c opens its upload, sends one chunk of the header and then nothing, with no deadline
  // of its own: the coordinator must end the call when the round closes without it.
  grpc::ClientContext context;
  v1::UploadUpdateResponse response;
  auto writer = Site("hospital-c").UploadUpdate(&context, &response);
  v1::UploadUpdateRequest first;
  *first.mutable_round() = Ref("hospital-c");
  *first.mutable_report() = Report(40);
  first.mutable_chunk()->set_name("update");
  first.mutable_chunk()->set_dtype("F32");
  first.mutable_chunk()->add_shape(length_);
  first.mutable_chunk()->set_total_bytes(static_cast<uint64_t>(length_) * 4);
  first.mutable_chunk()->set_data(std::string(64, '\0'));
  ASSERT_TRUE(writer->Write(first));
  ASSERT_TRUE(GoodUpload("hospital-a", 1.0f, 10).ok());
  ASSERT_TRUE(GoodUpload("hospital-b", 3.0f, 30).ok());
  const grpc::Status stalled = writer->Finish();  // returns only because the coordinator ends it
  EXPECT_EQ(stalled.error_code(), grpc::StatusCode::CANCELLED) << stalled.error_message();
  const v1::JobInfo job = federation_.WaitForJob(job_id_, "completed", absl::Seconds(60));
  ASSERT_EQ(job.state(), "completed") << job.error();
  ExpectModelIs(2.5f);
  const auto sites = RoundSites(job, 1);
  EXPECT_EQ(sites.at("hospital-c").status(), "dropped");
  EXPECT_THAT(sites.at("hospital-c").reason(), HasSubstr("deadline"));
}

TEST_F(BadInputTest, SiteCertificateCannotSubmitAJob) {
  federation_.RegisterAll();
  auto admin_as_site =
      v1::AdminService::NewStub(rpc::MakeChannel(federation_.Identity("hospital-a"), federation_.address(),
                                                 "coordinator"));
  grpc::ClientContext context;
  context.set_deadline(In(absl::Seconds(10)));
  v1::SubmitJobRequest request;
  request.set_job_config(TinyJob{}.Yaml(FEDATTN_SOURCE_DIR));
  v1::SubmitJobResponse response;
  ExpectRefused(admin_as_site->SubmitJob(&context, request, &response), grpc::StatusCode::PERMISSION_DENIED,
                "site certificate 'hospital-a' cannot call the admin service");
  grpc::ClientContext list;
  list.set_deadline(In(absl::Seconds(10)));
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(federation_.Admin().ListJobs(&list, v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
}

TEST_F(BadInputTest, BadJobConfigIsRefusedNamingTheKeyAndNothingIsRecorded) {
  const std::string good = federation_.Resolve(TinyJob{});
  auto replaced = [&](const std::string& from, const std::string& to) {
    std::string text = good;
    const size_t at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from << " in\n" << good;
    if (at != std::string::npos) text.replace(at, from.size(), to);
    return text;
  };
  const struct {
    std::string yaml, expected;
  } cases[] = {
      {replaced("job:\n", "job:\n  colour: red\n"), "job.colour: unknown key"},
      {replaced("rounds: 1\n", "rounds: many\n"), "job.rounds: expected an integer"},
      {replaced("job:\n", "job:\n  - [unclosed\n"), "not valid YAML"},
      {TinyJob{}.Yaml(FEDATTN_SOURCE_DIR), "a submitted job is self-contained"},
  };
  for (const auto& c : cases) {
    grpc::ClientContext context;
    context.set_deadline(In(absl::Seconds(10)));
    v1::SubmitJobRequest request;
    request.set_job_config(c.yaml);
    v1::SubmitJobResponse response;
    ExpectRefused(federation_.Admin().SubmitJob(&context, request, &response), grpc::StatusCode::INVALID_ARGUMENT,
                  c.expected);
  }
  grpc::ClientContext list;
  list.set_deadline(In(absl::Seconds(10)));
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(federation_.Admin().ListJobs(&list, v1::ListJobsRequest(), &jobs).ok());
  EXPECT_EQ(jobs.jobs_size(), 0);
}

}  // namespace
}  // namespace fedattn::testing
