// Read-only memory mapping of a whole file. Pages are shared with the page cache, so
// several processes or model instances mapping the same weights pay for them once.
#pragma once

#include <filesystem>
#include <memory>

#include "io/blob.h"

namespace cosy {

// Maps `path` read-only. Fails with a message naming the file when it cannot.
Blob map_file(const std::filesystem::path& path);

}  // namespace cosy
