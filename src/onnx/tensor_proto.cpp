#include "onnx/tensor_proto.h"

#include <cstring>

#include "core/error.h"
#include "core/file_io.h"
#include "io/mapped_file.h"
#include "onnx.pb.h"

namespace cosy::onnx {

std::optional<DType> dtype_from_onnx(int elem_type) {
  switch (elem_type) {
    case ::onnx::TensorProto::FLOAT:
      return DType::F32;
    case ::onnx::TensorProto::DOUBLE:
      return DType::F64;
    case ::onnx::TensorProto::FLOAT16:
      return DType::F16;
    case ::onnx::TensorProto::BFLOAT16:
      return DType::BF16;
    case ::onnx::TensorProto::INT64:
      return DType::I64;
    case ::onnx::TensorProto::INT32:
      return DType::I32;
    case ::onnx::TensorProto::INT16:
      return DType::I16;
    case ::onnx::TensorProto::INT8:
      return DType::I8;
    case ::onnx::TensorProto::UINT8:
      return DType::U8;
    case ::onnx::TensorProto::BOOL:
      return DType::Bool;
    default:
      return std::nullopt;
  }
}

int dtype_to_onnx(DType t) {
  switch (t) {
    case DType::F32:
      return ::onnx::TensorProto::FLOAT;
    case DType::F64:
      return ::onnx::TensorProto::DOUBLE;
    case DType::F16:
      return ::onnx::TensorProto::FLOAT16;
    case DType::BF16:
      return ::onnx::TensorProto::BFLOAT16;
    case DType::I64:
      return ::onnx::TensorProto::INT64;
    case DType::I32:
      return ::onnx::TensorProto::INT32;
    case DType::I16:
      return ::onnx::TensorProto::INT16;
    case DType::I8:
      return ::onnx::TensorProto::INT8;
    case DType::U8:
      return ::onnx::TensorProto::UINT8;
    case DType::Bool:
      return ::onnx::TensorProto::BOOL;
  }
  return ::onnx::TensorProto::UNDEFINED;
}

const char* onnx_type_name(int elem_type) {
  if (!::onnx::TensorProto_DataType_IsValid(elem_type)) return "an unknown type";
  static thread_local std::string name;
  name = ::onnx::TensorProto_DataType_Name(static_cast<::onnx::TensorProto_DataType>(elem_type));
  return name.c_str();
}

namespace {

// Copies typed values into a new tensor of `dtype`, element by element.
template <typename Src>
Tensor from_typed(DType dtype, const Shape& shape, const Src& values, const std::string& name) {
  // The count is checked before anything is allocated: a file may claim any shape.
  if (static_cast<int64_t>(values.size()) != shape_numel(shape)) {
    fail("tensor '", name, "' holds ", values.size(), " values for shape ", shape_str(shape));
  }
  Tensor t = Tensor::zeros(dtype, shape);
  std::byte* out = t.mutable_raw();
  for (int64_t i = 0; i < t.numel(); ++i) {
    auto v = values[static_cast<int>(i)];
    switch (dtype) {
      case DType::F32:
        reinterpret_cast<float*>(out)[i] = static_cast<float>(v);
        break;
      case DType::F64:
        reinterpret_cast<double*>(out)[i] = static_cast<double>(v);
        break;
      case DType::I64:
        reinterpret_cast<int64_t*>(out)[i] = static_cast<int64_t>(v);
        break;
      case DType::I32:
        reinterpret_cast<int32_t*>(out)[i] = static_cast<int32_t>(v);
        break;
      case DType::I16:
        reinterpret_cast<int16_t*>(out)[i] = static_cast<int16_t>(v);
        break;
      case DType::I8:
        reinterpret_cast<int8_t*>(out)[i] = static_cast<int8_t>(v);
        break;
      case DType::U8:
        reinterpret_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(v);
        break;
      case DType::Bool:
        reinterpret_cast<uint8_t*>(out)[i] = v != 0 ? 1 : 0;
        break;
      case DType::F16:
      case DType::BF16:  // stored as the 16-bit pattern in int32_data
        reinterpret_cast<uint16_t*>(out)[i] = static_cast<uint16_t>(v);
        break;
    }
  }
  return t;
}

// The external file a tensor names, resolved inside `base_dir` (no absolute paths, no "..").
std::filesystem::path external_path(const std::filesystem::path& base_dir,
                                    const std::string& location, const std::string& name) {
  std::filesystem::path rel(location);
  if (location.empty() || rel.is_absolute()) {
    fail("tensor '", name, "': external data location '", location, "' must be a relative path");
  }
  for (const auto& part : rel) {
    if (part == "..")
      fail("tensor '", name, "': external data location '", location,
           "' leaves the model's folder");
  }
  return base_dir / rel;
}

}  // namespace

Tensor tensor_from_proto(const ::onnx::TensorProto& p, const std::shared_ptr<const void>& owner,
                         const std::filesystem::path& base_dir,
                         std::vector<std::shared_ptr<const void>>& keep_alive) {
  const std::string& name = p.name();
  if (p.has_segment()) throw Error(cat("tensor '", name, "' is segmented, which is not supported"));
  std::optional<DType> dtype = dtype_from_onnx(p.data_type());
  if (!dtype) {
    fail("tensor '", name, "' has element type ", onnx_type_name(p.data_type()),
         ", which is not supported");
  }
  Shape shape(p.dims().begin(), p.dims().end());
  for (int64_t d : shape) {
    if (d < 0) fail("tensor '", name, "' has a negative dimension in ", shape_str(shape));
  }
  const int64_t numel = shape_numel(shape);
  const size_t nbytes = static_cast<size_t>(numel) * dtype_size(*dtype);
  auto view = [&](const std::byte* data, size_t size, std::shared_ptr<const void> keeper) {
    if (size != nbytes) {
      fail("tensor '", name, "' has ", size, " bytes of data for ", dtype_name(*dtype), " ",
           shape_str(shape), " (", nbytes, " expected)");
    }
    if (reinterpret_cast<uintptr_t>(data) % dtype_size(*dtype) != 0) {  // copy misaligned data
      Tensor t = Tensor::zeros(*dtype, shape);
      if (size > 0) std::memcpy(t.mutable_raw(), data, size);
      return t;
    }
    return Tensor(*dtype, shape, contiguous_strides(shape), const_cast<std::byte*>(data),
                  std::move(keeper), /*writable=*/false);
  };

  if (p.data_location() == ::onnx::TensorProto::EXTERNAL) {
    std::string location;
    int64_t offset = 0;
    int64_t length = -1;
    for (const auto& kv : p.external_data()) {
      if (kv.key() == "location") {
        location = kv.value();
      } else if (kv.key() == "offset" || kv.key() == "length") {
        int64_t v = 0;
        try {
          v = std::stoll(kv.value());
        } catch (const std::exception&) {
          fail("tensor '", name, "': external data ", kv.key(), " '", kv.value(),
               "' is not a number");
        }
        (kv.key() == "offset" ? offset : length) = v;
      }
    }
    Blob file = map_file(external_path(base_dir, location, name));
    if (length < 0) length = static_cast<int64_t>(file.bytes.size()) - offset;
    if (offset < 0 || length < 0 || static_cast<uint64_t>(offset + length) > file.bytes.size()) {
      fail("tensor '", name, "': external data [", offset, ", +", length, ") lies outside ",
           location, " (", file.bytes.size(), " bytes)");
    }
    keep_alive.push_back(file.owner);
    return view(file.bytes.data() + offset, static_cast<size_t>(length), file.owner);
  }
  if (p.has_raw_data()) {
    const std::string& raw = p.raw_data();
    return view(reinterpret_cast<const std::byte*>(raw.data()), raw.size(), owner);
  }
  switch (*dtype) {
    case DType::F32:
      return from_typed(*dtype, shape, p.float_data(), name);
    case DType::F64:
      return from_typed(*dtype, shape, p.double_data(), name);
    case DType::I64:
      return from_typed(*dtype, shape, p.int64_data(), name);
    default:
      return from_typed(*dtype, shape, p.int32_data(), name);
  }
}

Tensor read_tensor_file(const std::filesystem::path& path) {
  std::string bytes = read_whole_file(path);
  auto proto = std::make_shared<::onnx::TensorProto>();
  if (!proto->ParseFromString(bytes)) fail(path.string(), ": not a TensorProto");
  std::vector<std::shared_ptr<const void>> keep;
  Tensor view = tensor_from_proto(*proto, proto, path.parent_path(), keep);
  Tensor owned = Tensor::zeros(view.dtype(), view.shape());
  if (view.nbytes() > 0) std::memcpy(owned.mutable_raw(), view.raw(), view.nbytes());
  return owned;
}

}  // namespace cosy::onnx
