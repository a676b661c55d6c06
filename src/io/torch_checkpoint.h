// torch.save files (zip + data.pkl + data/<key> storages): reading them without Python,
// with tensors mapped in place, and writing files torch.load accepts.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "io/pickle.h"
#include "io/zip_reader.h"

namespace cosy {

// One opened torch.save file. Keeps the mapping alive; tensors it returns share it.
class TorchFile {
 public:
  static TorchFile open(const std::filesystem::path& path);
  static TorchFile from_blob(Blob bytes, std::string label);

  const pickle::Value* root() const { return doc_->root(); }
  const std::string& label() const { return label_; }
  // The zip container, for checking every record's CRC-32 (verify_zip_entries).
  std::shared_ptr<const ZipArchive> archive() const { return zip_; }
  // Materialises a tensor record: a view into the mapping when the data is stored and
  // aligned, a private copy otherwise. Checks every bound against its storage.
  Tensor tensor(const pickle::TensorRef& ref) const;

 private:
  TorchFile(Blob bytes, std::string label);
  Blob storage(const pickle::StorageRef& s) const;

  std::string label_;
  std::shared_ptr<ZipArchive> zip_;
  std::shared_ptr<pickle::Document> doc_;
  std::string prefix_;  // archive folder, e.g. "llm/"
  // Storages already materialised, so tensors sharing a storage share its bytes.
  mutable std::shared_ptr<std::mutex> mutex_ = std::make_shared<std::mutex>();
  mutable std::shared_ptr<std::unordered_map<std::string, Blob>> storages_ =
      std::make_shared<std::unordered_map<std::string, Blob>>();
};

// A flat name → tensor map in checkpoint order (a PyTorch state_dict).
class StateDict {
 public:
  void add(std::string name, Tensor t);
  const Tensor* find(const std::string& name) const;
  // The tensor, or an error naming the file and the missing tensor.
  const Tensor& at(const std::string& name) const;
  const std::vector<std::string>& names() const { return names_; }
  size_t size() const { return names_.size(); }
  std::string label;                          // the file it came from, for messages
  std::shared_ptr<const ZipArchive> archive;  // its container, when it came from a torch file

 private:
  std::vector<std::string> names_;
  std::unordered_map<std::string, Tensor> tensors_;
};

// Loads a state_dict file (str → tensor). Integer/float entries some training scripts add
// (epoch, step) are skipped; any other non-tensor value is an error.
StateDict load_state_dict(const std::filesystem::path& path);
StateDict state_dict_of(const TorchFile& file);

struct SaveEntry;

// What save_torch_file writes: a tensor or a dict of nodes (keys in order).
struct SaveNode {
  using Entries = std::vector<SaveEntry>;
  static SaveNode tensor(Tensor t);
  // `ordered` writes a collections.OrderedDict, as torch state_dicts are.
  static SaveNode dict(Entries entries, bool ordered = false);

  bool is_dict = false;
  bool ordered = false;
  Tensor value;
  Entries entries;
};

struct SaveEntry {
  std::string key;
  SaveNode node;
};

// Writes `root` as torch.save would (protocol 2, archive folder `archive_name`). Tensors
// that share their data pointer are written once, as one shared storage.
void save_torch_file(const std::filesystem::path& path, const std::string& archive_name,
                     const SaveNode& root, bool force_zip64 = false);
void save_state_dict(const std::filesystem::path& path, const std::string& archive_name,
                     const std::vector<std::pair<std::string, Tensor>>& tensors);

}  // namespace cosy
