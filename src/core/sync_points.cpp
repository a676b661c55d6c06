#include "core/sync_points.h"

#include <atomic>

namespace cosy {
namespace {
std::atomic<SyncListener*> g_listener{nullptr};
}  // namespace

void set_sync_listener(SyncListener* listener) { g_listener.store(listener); }

SyncListener* sync_listener() { return g_listener.load(std::memory_order_relaxed); }

}  // namespace cosy
