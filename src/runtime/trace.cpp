#include "runtime/trace.h"

#include <unistd.h>

#include "core/error.h"

namespace cosy {

using Json = nlohmann::json;

namespace {
thread_local int t_pid = 0;
thread_local int64_t t_tid = 0;
}  // namespace

TraceWriter::TraceWriter(const std::filesystem::path& file) : file_(file), origin_(Clock::now()) {
  out_.open(file, std::ios::binary | std::ios::trunc);
  if (!out_) fail("--trace ", file.string(), ": cannot write");
  out_ << "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
}

TraceWriter::~TraceWriter() {
  try {
    close();
  } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor reports nothing
  }
}

void TraceWriter::close() {
  std::lock_guard lock(mutex_);
  if (closed_) return;
  if (listening_ && sync_listener() == this) set_sync_listener(nullptr);
  closed_ = true;
  out_ << "\n]}\n";
  out_.flush();
  if (!out_) fail("--trace ", file_.string(), ": write failed");
  out_.close();
}

double TraceWriter::micros(Clock::time_point t) const {
  return std::chrono::duration<double, std::micro>(t - origin_).count();
}

void TraceWriter::write(const Json& event) {
  if (closed_) return;
  if (!first_) out_ << ",\n";
  first_ = false;
  out_ << event.dump(-1, ' ', false, Json::error_handler_t::replace);
}

void TraceWriter::name_track(int pid, int64_t tid, std::string_view process,
                             std::string_view thread) {
  std::lock_guard lock(mutex_);
  if (!named_.insert({pid, tid}).second) return;
  if (named_.insert({pid, -1}).second) {
    write({{"name", "process_name"},
           {"ph", "M"},
           {"pid", pid},
           {"tid", 0},
           {"args", {{"name", process}}}});
    write({{"name", "process_sort_index"},
           {"ph", "M"},
           {"pid", pid},
           {"tid", 0},
           {"args", {{"sort_index", pid}}}});
  }
  write({{"name", "thread_name"},
         {"ph", "M"},
         {"pid", pid},
         {"tid", tid},
         {"args", {{"name", thread}}}});
}

void TraceWriter::span(int pid, int64_t tid, std::string_view name, Clock::time_point begin,
                       Clock::time_point end, const Json& args) {
  Json e = {{"name", name},        {"ph", "X"},
            {"pid", pid},          {"tid", tid},
            {"ts", micros(begin)}, {"dur", std::max(0.0, micros(end) - micros(begin))}};
  if (!args.is_null()) e["args"] = args;
  std::lock_guard lock(mutex_);
  write(e);
}

void TraceWriter::instant(int pid, int64_t tid, std::string_view name, Clock::time_point at,
                          const Json& args) {
  Json e = {{"name", name}, {"ph", "i"},  {"s", "t"},
            {"pid", pid},   {"tid", tid}, {"ts", micros(at)}};
  if (!args.is_null()) e["args"] = args;
  std::lock_guard lock(mutex_);
  write(e);
}

void TraceWriter::counter(std::string_view name, Clock::time_point at, const Json& values) {
  Json e = {{"name", name}, {"ph", "C"},        {"pid", trace_tracks::kEngine},
            {"tid", 0},     {"ts", micros(at)}, {"args", values}};
  std::lock_guard lock(mutex_);
  write(e);
}

void TraceWriter::set_thread_track(int pid, int64_t tid) {
  t_pid = pid;
  t_tid = tid;
}

void TraceWriter::on_sync(Clock::time_point begin, Clock::time_point end) {
  if (t_pid == 0) return;
  span(t_pid, t_tid, "sync", begin, end);
}

void TraceWriter::listen_for_sync_points() {
  std::lock_guard lock(mutex_);
  listening_ = true;
  set_sync_listener(this);
}

}  // namespace cosy
