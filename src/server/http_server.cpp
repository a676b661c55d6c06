#include "server/http_server.h"

#include <cstdio>
#include <thread>

#include "server/http_session.h"
#include "server/server_state.h"

namespace cosy::server {

void ServerState::accept() {
  acceptor_.async_accept(net::make_strand(ioc_),
                         [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                           if (ec) {
                             if (ec == net::error::operation_aborted || !self->acceptor_.is_open())
                               return;
                           } else {
                             start_http_session(std::move(socket), self);
                           }
                           self->accept();
                         });
}

// One line and close: what HAProxy's agent-check expects (it sends nothing).
void ServerState::accept_agent() {
  agent_acceptor_.async_accept(
      net::make_strand(ioc_), [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
        if (ec) {
          if (ec == net::error::operation_aborted || !self->agent_acceptor_.is_open()) return;
        } else {
          auto socket = std::make_shared<tcp::socket>(std::move(s));
          auto line = std::make_shared<std::string>(self->agent_reply());
          net::async_write(*socket, net::buffer(*line), [socket, line](beast::error_code, size_t) {
            beast::error_code ignored;
            socket->shutdown(tcp::socket::shutdown_both, ignored);
            socket->close(ignored);
          });
        }
        self->accept_agent();
      });
}

void ServerState::poll_drain() {
  auto timer = std::make_shared<net::steady_timer>(ioc_, std::chrono::milliseconds(50));
  timer->async_wait([self = shared_from_this(), timer](const beast::error_code&) {
    const bool idle = self->active() == 0 && self->responses() == 0;
    if (!idle && !self->drain_cancelled_ &&
        seconds_since(self->drain_started_) >= self->o_.drain_timeout) {
      self->drain_cancelled_ = true;
      std::vector<std::shared_ptr<SpeechJob>> jobs;
      {
        std::lock_guard lock(self->mutex_);
        for (auto& w : self->jobs_) {
          if (auto j = w.lock()) jobs.push_back(j);
        }
      }
      std::fprintf(stderr, "drain timeout: ending %zu stream(s)\n", jobs.size());
      for (auto& j : jobs) j->cancel();
    }
    // Give ended streams a moment to say so to their clients, then stop.
    if (idle || (self->drain_cancelled_ &&
                 seconds_since(self->drain_started_) >= self->o_.drain_timeout + 5)) {
      std::fprintf(stderr, "drained\n");
      self->ioc_.stop();
      return;
    }
    self->poll_drain();
  });
}

class HttpServer::Impl : public ServerState {
 public:
  using ServerState::ServerState;
};

HttpServer::HttpServer(Engine& engine, ServerOptions options, std::shared_ptr<VoiceService> voices)
    : impl_(std::make_shared<Impl>(engine, std::move(options), std::move(voices))) {}
HttpServer::~HttpServer() = default;
int HttpServer::listen() { return impl_->listen(); }
int HttpServer::agent_port() const { return impl_->agent_port_; }
void HttpServer::run() { impl_->run(); }
void HttpServer::drain() { impl_->drain(); }

}  // namespace cosy::server
