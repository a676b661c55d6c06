#include "kernels/scratch.h"

namespace cosy::cpu {

namespace {
struct ThreadScratch {
  Arena arena;
  int depth = 0;
};
ThreadScratch& thread_scratch() {
  thread_local ThreadScratch s;
  return s;
}
}  // namespace

ScratchScope::ScratchScope() { ++thread_scratch().depth; }
ScratchScope::~ScratchScope() {
  ThreadScratch& s = thread_scratch();
  if (--s.depth == 0) s.arena.reset();
}
Arena& ScratchScope::arena() { return thread_scratch().arena; }

}  // namespace cosy::cpu
