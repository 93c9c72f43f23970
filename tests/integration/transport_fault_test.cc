// Dropped and duplicated messages between agents and the coordinator (issue 9, item 1): real
// agent::Agent task loops, each over a FaultInjectingLink around its own GrpcCoordinatorLink,
// against the real coordinator in this process (mutual TLS on 127.0.0.1). The sites' training
// is faked (a fixed update), so every committed model is known exactly: a duplicate that took
// effect or a lost update would show in it.
#include <memory>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "fedattn/agent/agent.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/fault_injecting_link.h"
#include "util/in_process_federation.h"

namespace fedattn::testing {
namespace {

using ::testing::HasSubstr;

// One site: a real Agent (register, heartbeat, long-poll, report failures) whose "init" task
// sends a zero model and whose "train" task downloads the model and uploads `value` for
// `examples` examples.
class FakeSite {
 public:
  FakeSite(InProcessFederation& federation, const std::string& name, float value, int64_t examples,
           FaultInjectingLink::Plan plan)
      : identity_(&federation.Identity(name)) {
    agent::AgentOptions options;
    options.site_name = name;
    options.coordinator = {federation.address(), "coordinator"};
    options.initial_backoff_ms = 50;
    options.max_backoff_ms = 200;
    options.pull_wait_ms = 300;
    grpc_ = std::make_unique<agent::GrpcCoordinatorLink>(identity_, options.coordinator);
    link_ = std::make_unique<FaultInjectingLink>(grpc_.get(), std::move(plan));
    agent_ = std::make_unique<agent::Agent>(options, link_.get());
    const models::ModelSpec* spec = &federation.model_spec();
    agent_->SetTaskHandler("init", [this, spec](const v1::Task& task) {
      std::vector<TensorBuffer> model = ZeroModel(*spec);
      std::vector<rpc::TensorView> views;
      for (const TensorBuffer& tensor : model) views.push_back(rpc::ViewOf(tensor));
      return link_->UploadUpdate(task.round(), Report(0), views).status();
    });
    agent_->SetTaskHandler("train", [this, spec, value, examples](const v1::Task& task) -> absl::Status {
      absl::StatusOr<std::vector<TensorBuffer>> model = link_->DownloadModel(task.round());
      if (!model.ok()) return model.status();
      // The signed ledger entry goes first (as RoundTasks does); resent as is after a failure.
      if (logged_round_ != static_cast<int64_t>(task.round().round())) {
        auto logged = link_->RecordLedgerEntry(
            ReleaseEntry(*identity_, task.round().job_id(), static_cast<int64_t>(task.round().round()), seq_ + 1));
        if (!logged.ok()) return logged.status();
        ++seq_;
        logged_round_ = static_cast<int64_t>(task.round().round());
      }
      const TensorBuffer update = FlatUpdate(spec->NumTrainable(), value);
      auto sent = link_->UploadUpdate(task.round(), Report(examples, 0.25), {rpc::ViewOf(update)});
      return sent.status();
    });
    thread_ = std::thread([this] { (void)agent_->Run(); });
  }
  ~FakeSite() {
    agent_->Stop();
    thread_.join();
  }
  FaultInjectingLink& link() { return *link_; }

 private:
  const rpc::TlsIdentity* identity_;  // owned by the federation
  int64_t seq_ = 0;            // releases in this site's ledger (the task thread only)
  int64_t logged_round_ = -1;
  std::unique_ptr<agent::GrpcCoordinatorLink> grpc_;
  std::unique_ptr<FaultInjectingLink> link_;
  std::unique_ptr<agent::Agent> agent_;
  std::thread thread_;
};

class TransportFaultTest : public ::testing::Test {
 protected:
  // Every trainable value of the committed model (the job starts from zeros).
  void ExpectModelIs(const std::string& job_id, float value) {
    auto model = federation_.ExportModel(job_id);
    ASSERT_TRUE(model.ok()) << model.status();
    for (const TensorBuffer& tensor : *model) {
      const float* values = reinterpret_cast<const float*>(tensor.data.data());
      for (size_t i = 0; i < tensor.data.size() / sizeof(float); ++i) {
        ASSERT_EQ(values[i], value) << tensor.name << "[" << i << "]";
      }
    }
  }
  static std::map<std::string, v1::RoundSiteInfo> Sites(const v1::RoundInfo& round) {
    std::map<std::string, v1::RoundSiteInfo> sites;
    for (const v1::RoundSiteInfo& site : round.sites()) sites[site.site()] = site;
    return sites;
  }
  static std::vector<v1::RoundInfo> Committed(const v1::JobInfo& job) {
    std::vector<v1::RoundInfo> rounds;
    for (const v1::RoundInfo& round : job.round_history()) {
      if (round.state() == "committed" && round.round() > 0) rounds.push_back(round);
    }
    return rounds;
  }

  InProcessFederation federation_{{"hospital-a", "hospital-b", "hospital-c"}, FEDATTN_SOURCE_DIR};
};

Fault DuplicateEverythingButPolls(const FaultInjectingLink::Call& call) {
  // A repeated long poll could take the next round's task into the answer the network loses;
  // that case (a lost task) has its own test below.
  return call.method == "PullTask" ? Fault::kNone : Fault::kDuplicate;
}

// Sites come online through their agents only: hospital-c, which runs no agent here, is never
// selected.
TEST_F(TransportFaultTest, DuplicatedMessagesHaveNoEffect) {
  const std::string job_id = federation_.Submit(TinyJob{.rounds = 2, .min_sites = 2});
  FakeSite a(federation_, "hospital-a", 1.0f, 10, DuplicateEverythingButPolls);
  FakeSite b(federation_, "hospital-b", 3.0f, 30, DuplicateEverythingButPolls);
  const v1::JobInfo job = federation_.WaitForJob(job_id, "completed", absl::Seconds(120));
  ASSERT_EQ(job.state(), "completed") << job.error();
  // Two rounds of (1*10 + 3*30) / 40 = 2.5, each update counted once.
  ExpectModelIs(job_id, 5.0f);
  const std::vector<v1::RoundInfo> rounds = Committed(job);
  ASSERT_EQ(rounds.size(), 2u);
  for (const v1::RoundInfo& round : rounds) {
    const auto sites = Sites(round);
    EXPECT_EQ(sites.at("hospital-a").status(), "contributed");
    EXPECT_EQ(sites.at("hospital-a").num_examples(), 10);
    EXPECT_EQ(sites.at("hospital-b").status(), "contributed");
    EXPECT_EQ(sites.at("hospital-b").num_examples(), 30);
    EXPECT_EQ(sites.at("hospital-b").epsilon_spent(), 0.25);  // recorded once, not summed
  }
  // Every second copy of an upload was refused as a replay; downloads and heartbeats are
  // idempotent and simply answered again.
  int uploads = 0;
  for (FakeSite* site : {&a, &b}) {
    for (const FaultInjectingLink::Duplicate& duplicate : site->link().duplicates()) {
      if (duplicate.method == "UploadUpdate") {
        ++uploads;
        EXPECT_EQ(duplicate.second.code(), absl::StatusCode::kFailedPrecondition) << duplicate.second;
      } else if (duplicate.method == "DownloadModel" || duplicate.method == "Heartbeat" ||
                 duplicate.method == "Register") {
        EXPECT_TRUE(duplicate.second.ok()) << duplicate.method << ": " << duplicate.second;
      }
    }
  }
  EXPECT_GE(uploads, 4);  // init counts for whichever site sent it
}

TEST_F(TransportFaultTest, LostUploadAnswerLeavesTheUpdateCountedOnce) {
  const std::string job_id = federation_.Submit(TinyJob{.rounds = 1, .min_sites = 2});
  // hospital-b's update arrives but the answer is lost: its agent reports the task failed.
  FakeSite a(federation_, "hospital-a", 1.0f, 10, {});
  FakeSite b(federation_, "hospital-b", 3.0f, 30, [](const FaultInjectingLink::Call& call) {
    return call.method == "UploadUpdate" ? Fault::kDropResponse : Fault::kNone;
  });
  const v1::JobInfo job = federation_.WaitForJob(job_id, "completed", absl::Seconds(120));
  ASSERT_EQ(job.state(), "completed") << job.error();
  ExpectModelIs(job_id, 2.5f);
  const std::vector<v1::RoundInfo> rounds = Committed(job);
  ASSERT_EQ(rounds.size(), 1u);
  // The late failure report does not undo what the coordinator already counted.
  EXPECT_EQ(Sites(rounds[0]).at("hospital-b").status(), "contributed");
  EXPECT_GE(b.link().faults_injected(), 1);
}

TEST_F(TransportFaultTest, ALostTaskIsHandedOutAgainToTheIdleSite) {
  // hospital-b never sees the first task handed to it; its next idle heartbeat tells the
  // coordinator, which queues the same task again, long before the 60 s deadline.
  const std::string job_id = federation_.Submit(TinyJob{.rounds = 1, .min_sites = 2, .train_s = 60});
  FakeSite a(federation_, "hospital-a", 1.0f, 10, {});
  FakeSite b(federation_, "hospital-b", 3.0f, 30, [](const FaultInjectingLink::Call& call) {
    return call.method == "PullTask" ? Fault::kDropTaskOnce : Fault::kNone;
  });
  const v1::JobInfo job = federation_.WaitForJob(job_id, "completed", absl::Seconds(120));
  ASSERT_EQ(job.state(), "completed") << job.error();
  EXPECT_EQ(b.link().faults_injected(), 1);
  const std::vector<v1::RoundInfo> rounds = Committed(job);
  ASSERT_EQ(rounds.size(), 1u);
  const auto sites = Sites(rounds[0]);
  EXPECT_EQ(sites.at("hospital-a").status(), "contributed");
  EXPECT_EQ(sites.at("hospital-b").status(), "contributed") << sites.at("hospital-b").reason();
  ExpectModelIs(job_id, 2.5f);
}

TEST_F(TransportFaultTest, SilentSitesAreDroppedAtTheDeadlineAndNothingHangs) {
  federation_.RegisterAll();  // all three are selected
  const std::string job_id = federation_.Submit(TinyJob{.rounds = 1, .min_sites = 2, .train_s = 3});
  FakeSite a(federation_, "hospital-a", 1.0f, 10, {});
  FakeSite b(federation_, "hospital-b", 3.0f, 30, {});
  // hospital-c never sees its tasks (the answers that hand them out are lost) and its uploads
  // never arrive: the coordinator must close the round at its deadline without it.
  FakeSite c(federation_, "hospital-c", 100.0f, 1000, [](const FaultInjectingLink::Call& call) {
    if (call.method == "PullTask") return Fault::kDropTask;
    if (call.method == "UploadUpdate") return Fault::kDropRequest;
    return Fault::kNone;
  });
  const v1::JobInfo job = federation_.WaitForJob(job_id, "completed", absl::Seconds(120));
  ASSERT_EQ(job.state(), "completed") << job.error();
  ExpectModelIs(job_id, 2.5f);
  const std::vector<v1::RoundInfo> rounds = Committed(job);
  ASSERT_EQ(rounds.size(), 1u);
  const auto sites = Sites(rounds[0]);
  EXPECT_EQ(sites.at("hospital-c").status(), "dropped");
  EXPECT_THAT(sites.at("hospital-c").reason(), HasSubstr("missed the training deadline"));
  EXPECT_GE(c.link().faults_injected(), 1);
}

}  // namespace
}  // namespace fedattn::testing
