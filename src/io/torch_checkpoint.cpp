#include "io/torch_checkpoint.h"

#include <cstring>

#include "core/error.h"
#include "io/mapped_file.h"
#include "io/pickle_writer.h"
#include "io/zip_writer.h"

namespace cosy {

TorchFile TorchFile::open(const std::filesystem::path& path) {
  return TorchFile(map_file(path), path.string());
}

TorchFile TorchFile::from_blob(Blob bytes, std::string label) {
  return TorchFile(std::move(bytes), std::move(label));
}

TorchFile::TorchFile(Blob bytes, std::string label) : label_(std::move(label)) {
  if (bytes.bytes.size() >= 2 && bytes.bytes[0] == std::byte{0x80}) {
    fail(label_,
         ": legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a newer "
         "torch");
  }
  zip_ = std::make_shared<ZipArchive>(std::move(bytes), label_);
  const ZipEntry* pkl = nullptr;
  for (const ZipEntry& e : zip_->entries()) {
    const auto slash = e.name.find('/');
    if (slash != std::string::npos && e.name.compare(slash, std::string::npos, "/data.pkl") == 0) {
      if (pkl != nullptr) fail(label_, ": more than one data.pkl in the archive");
      pkl = &e;
      prefix_ = e.name.substr(0, slash + 1);
    }
  }
  if (pkl == nullptr) fail(label_, ": zip archive has no <name>/data.pkl: not a torch.save file");
  if (const ZipEntry* order = zip_->find(prefix_ + "byteorder")) {
    if (zip_->read(*order).text() != "little")
      fail(label_, ": big-endian checkpoints are not supported");
  }
  Blob pickle_bytes = zip_->read_verified(*pkl);
  doc_ =
      std::make_shared<pickle::Document>(pickle::parse(pickle_bytes.bytes, label_ + " (data.pkl)"));
}

Blob TorchFile::storage(const pickle::StorageRef& s) const {
  std::lock_guard lock(*mutex_);
  if (auto it = storages_->find(s.key); it != storages_->end()) return it->second;
  const ZipEntry* e = zip_->find(prefix_ + "data/" + s.key);
  if (e == nullptr) fail(label_, ": storage '", s.key, "' is missing from the archive");
  const size_t es = dtype_size(s.dtype);
  if (static_cast<uint64_t>(s.numel) > e->uncompressed_size / es) {
    fail(label_, ": storage '", s.key, "' declares ", s.numel, " ", dtype_name(s.dtype),
         " elements but holds only ", e->uncompressed_size, " bytes");
  }
  Blob b = zip_->read(*e);
  if (reinterpret_cast<uintptr_t>(b.bytes.data()) % es != 0)
    b = copy_blob(b.bytes);  // keep typed loads aligned
  storages_->emplace(s.key, b);
  return b;
}

Tensor TorchFile::tensor(const pickle::TensorRef& ref) const {
  Blob s = storage(ref.storage);
  const int64_t numel = with_context(label_, [&] { return shape_numel(ref.shape); });
  if (ref.offset < 0) fail(label_, ": tensor with negative storage offset");
  if (numel > 0) {
    // The last element the view touches must lie inside the storage.
    int64_t last = ref.offset;
    for (size_t i = 0; i < ref.shape.size(); ++i) {
      if (ref.stride[i] < 0) fail(label_, ": tensor with negative stride");
      int64_t span = 0;
      if (__builtin_mul_overflow(ref.shape[i] - 1, ref.stride[i], &span) ||
          __builtin_add_overflow(last, span, &last)) {
        fail(label_, ": tensor view ", shape_str(ref.shape), " overflows");
      }
    }
    if (last >= ref.storage.numel) {
      fail(label_, ": tensor view ", shape_str(ref.shape), " at offset ", ref.offset,
           " exceeds its storage '", ref.storage.key, "' of ", ref.storage.numel, " elements");
    }
  } else if (ref.offset > ref.storage.numel) {
    fail(label_, ": tensor offset exceeds its storage");
  }
  auto* base = const_cast<std::byte*>(s.bytes.data()) +
               ref.offset * static_cast<int64_t>(dtype_size(ref.storage.dtype));
  return Tensor(ref.storage.dtype, ref.shape, ref.stride, base, s.owner, false);
}

void StateDict::add(std::string name, Tensor t) {
  if (tensors_.count(name) != 0) fail(label, ": duplicate tensor '", name, "'");
  names_.push_back(name);
  tensors_.emplace(std::move(name), std::move(t));
}

const Tensor* StateDict::find(const std::string& name) const {
  auto it = tensors_.find(name);
  return it == tensors_.end() ? nullptr : &it->second;
}

const Tensor& StateDict::at(const std::string& name) const {
  const Tensor* t = find(name);
  if (t == nullptr) fail(label, ": missing tensor '", name, "'");
  return *t;
}

StateDict state_dict_of(const TorchFile& file) {
  const pickle::Value* root = file.root();
  if (!root->is(pickle::Kind::Dict))
    fail(file.label(), ": top level is a ", pickle::kind_name(root->kind), ", not a state_dict");
  StateDict sd;
  sd.label = file.label();
  sd.archive = file.archive();
  for (const auto& [k, v] : root->entries) {
    if (!k->is(pickle::Kind::String)) fail(file.label(), ": state_dict key is not a string");
    if (v->is(pickle::Kind::Int) || v->is(pickle::Kind::Float)) continue;  // epoch, step, ...
    if (!v->is(pickle::Kind::Tensor)) {
      fail(file.label(), ": entry '", k->text, "' is a ", pickle::kind_name(v->kind),
           ", not a tensor");
    }
    sd.add(k->text, file.tensor(v->tensor));
  }
  return sd;
}

StateDict load_state_dict(const std::filesystem::path& path) {
  return state_dict_of(TorchFile::open(path));
}

namespace {

// Storages in write order; a tensor whose bytes are already there (a tied weight) reuses
// that storage's key.
struct StorageTable {
  std::vector<Tensor> storages;  // key = index
  std::unordered_map<const std::byte*, size_t> by_data;

  std::string key_for(const Tensor& t) {
    auto [it, added] = by_data.try_emplace(t.raw(), storages.size());
    const Tensor* known = added ? nullptr : &storages[it->second];
    if (known == nullptr || known->nbytes() != t.nbytes() || known->dtype() != t.dtype()) {
      it->second = storages.size();
      storages.push_back(t);
    }
    return std::to_string(it->second);
  }
};

void write_node(pickle::Writer& w, StorageTable& table, const SaveNode& node) {
  if (!node.is_dict) {
    Tensor c = node.value.contiguous();
    pickle::TensorRecord rec{c.dtype(), table.key_for(c), c.numel(), 0, c.shape(), c.strides()};
    w.tensor(rec);
    return;
  }
  w.begin_dict(node.ordered);
  for (const auto& [key, child] : node.entries) {
    w.string(key);
    write_node(w, table, child);
  }
  w.end_dict();
}

}  // namespace

SaveNode SaveNode::tensor(Tensor t) {
  SaveNode n;
  n.value = std::move(t);
  return n;
}

SaveNode SaveNode::dict(Entries entries, bool ordered) {
  SaveNode n;
  n.is_dict = true;
  n.ordered = ordered;
  n.entries = std::move(entries);
  return n;
}

void save_torch_file(const std::filesystem::path& path, const std::string& archive_name,
                     const SaveNode& root, bool force_zip64) {
  pickle::Writer w;
  StorageTable table;
  write_node(w, table, root);
  const std::string pkl = w.finish();
  ZipWriter zip(path, {64, force_zip64});
  zip.add(archive_name + "/data.pkl", pkl);
  zip.add(archive_name + "/byteorder", std::string_view("little"));
  for (size_t key = 0; key < table.storages.size(); ++key) {
    zip.add(archive_name + "/data/" + std::to_string(key), table.storages[key].bytes());
  }
  zip.add(archive_name + "/version", std::string_view("3\n"));
  zip.finish();
}

void save_state_dict(const std::filesystem::path& path, const std::string& archive_name,
                     const std::vector<std::pair<std::string, Tensor>>& tensors) {
  SaveNode::Entries entries;
  entries.reserve(tensors.size());
  for (const auto& [name, t] : tensors) entries.push_back({name, SaveNode::tensor(t)});
  save_torch_file(path, archive_name, SaveNode::dict(std::move(entries), /*ordered=*/true));
}

}  // namespace cosy
