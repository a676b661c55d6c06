#include "server/form_data.h"

#include <gmime/gmime.h>

#include <memory>
#include <mutex>

#include "server/api_error.h"

namespace cosy::server {

namespace {

template <typename T>
struct GUnref {
  void operator()(T* p) const {
    if (p != nullptr) g_object_unref(p);
  }
};
template <typename T>
using GPtr = std::unique_ptr<T, GUnref<T>>;

[[noreturn]] void malformed(const std::string& why) {
  throw ApiError(400, "invalid_request_error", "", "invalid_form_data", why);
}

}  // namespace

std::vector<FormPart> parse_form_data(std::string_view content_type, std::string_view body) {
  static std::once_flag init;
  std::call_once(init, [] { g_mime_init(); });
  {
    GMimeContentType* ct = g_mime_content_type_parse(nullptr, std::string(content_type).c_str());
    const bool ok = ct != nullptr && g_mime_content_type_is_type(ct, "multipart", "form-data") &&
                    g_mime_content_type_get_parameter(ct, "boundary") != nullptr;
    if (ct != nullptr) g_object_unref(ct);
    if (!ok) malformed("the body must be multipart/form-data with a boundary");
  }
  // GMime parses a MIME entity: the header that names the boundary, then the body.
  std::string entity = "Content-Type: " + std::string(content_type) + "\r\n\r\n";
  entity.append(body);
  GPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(entity.data(), entity.size()));
  GPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GPtr<GMimeObject> root(g_mime_parser_construct_part(parser.get(), nullptr));
  if (!root || !GMIME_IS_MULTIPART(root.get())) malformed("the multipart body does not parse");
  GMimeMultipart* mp = GMIME_MULTIPART(root.get());
  std::vector<FormPart> parts;
  const int n = g_mime_multipart_get_count(mp);
  for (int i = 0; i < n; ++i) {
    GMimeObject* obj = g_mime_multipart_get_part(mp, i);
    if (!GMIME_IS_PART(obj)) malformed("nested multipart bodies are not accepted");
    FormPart p;
    const char* name = g_mime_object_get_content_disposition_parameter(obj, "name");
    if (name == nullptr) malformed("a form part has no name");
    p.name = name;
    if (const char* f = g_mime_part_get_filename(GMIME_PART(obj))) p.filename = f;
    if (GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(obj))) {
      GPtr<GMimeStream> out(g_mime_stream_mem_new());
      if (g_mime_data_wrapper_write_to_stream(content, out.get()) < 0)
        malformed("a form part cannot be read");
      GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
      p.data.assign(reinterpret_cast<const char*>(bytes->data), bytes->len);
    }
    parts.push_back(std::move(p));
  }
  return parts;
}

}  // namespace cosy::server
