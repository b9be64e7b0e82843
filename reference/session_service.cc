#include "reference/session_service.h"

#include <utility>

#include "chaosdrill/reference/v1/session.grpc.pb.h"

namespace chaosdrill::reference {
namespace {

namespace pb = ::chaosdrill::reference::v1;

grpc::Status ToGrpc(const absl::Status& s) {
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

class SessionServiceImpl final : public pb::SessionService::Service {
 public:
  explicit SessionServiceImpl(std::unique_ptr<SessionStore> store) : store_(std::move(store)) {}

  grpc::Status Append(grpc::ServerContext*, const pb::AppendRequest* req,
                      pb::AppendResponse* resp) override {
    auto ack = store_->Append(req->session(), req->seq(), req->payload());
    if (!ack.ok()) return ToGrpc(ack.status());
    resp->set_session(req->session());
    resp->set_seq(req->seq());
    resp->set_length(ack->length);
    resp->set_replication(store_->options().replication);
    resp->set_replicas_acked(ack->replicas_acked);
    resp->set_primary(ack->primary);
    return grpc::Status::OK;
  }

  grpc::Status Read(grpc::ServerContext*, const pb::ReadRequest* req,
                    pb::ReadResponse* resp) override {
    auto read = store_->Read(req->session());
    if (!read.ok()) return ToGrpc(read.status());
    resp->set_primary(read->primary);
    for (SessionEntry& e : read->entries) {
      pb::Entry* out = resp->add_entries();
      out->set_seq(e.seq);
      out->set_payload(std::move(e.payload));
    }
    return grpc::Status::OK;
  }

 private:
  std::unique_ptr<SessionStore> store_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<grpc::Service>> CreateSessionService(
    const SessionStoreOptions& options) {
  auto store = SessionStore::Create(options);
  if (!store.ok()) return store.status();
  return std::unique_ptr<grpc::Service>(new SessionServiceImpl(std::move(*store)));
}

}  // namespace chaosdrill::reference
