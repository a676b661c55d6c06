#include "io/pickle.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "io/pickle_writer.h"

namespace cosy::pickle {
namespace {

std::span<const std::byte> as_bytes(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// A string literal with embedded NULs kept.
template <size_t N>
std::string B(const char (&s)[N]) {
  return std::string(s, N - 1);
}

std::string error_of(const std::string& bytes) {
  try {
    parse(as_bytes(bytes), "x.pkl");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Pickle, WriterOutputReadsBack) {
  Writer w;
  w.begin_dict(true);
  w.string("ints");
  w.begin_dict(false);
  for (int64_t v :
       {int64_t{0}, int64_t{255}, int64_t{65535}, int64_t{-5}, int64_t{1} << 40, INT64_MIN}) {
    w.string(std::to_string(v));
    w.integer(v);
  }
  w.end_dict();
  w.string("pi");
  w.real(3.25);
  w.string("flag");
  w.boolean(true);
  w.string("nothing");
  w.none();
  w.string("weight");
  w.tensor({DType::BF16, "7", 12, 2, {2, 3}, {3, 1}});
  w.end_dict();
  const std::string bytes = w.finish();

  Document doc = parse(as_bytes(bytes), "x.pkl");
  const Value* root = doc.root();
  ASSERT_TRUE(root->is(Kind::Dict));
  const Value* ints = root->get("ints");
  ASSERT_NE(ints, nullptr);
  for (int64_t v :
       {int64_t{0}, int64_t{255}, int64_t{65535}, int64_t{-5}, int64_t{1} << 40, INT64_MIN}) {
    ASSERT_NE(ints->get(std::to_string(v)), nullptr);
    EXPECT_EQ(ints->get(std::to_string(v))->integer, v);
  }
  EXPECT_DOUBLE_EQ(root->get("pi")->real, 3.25);
  EXPECT_TRUE(root->get("flag")->boolean);
  EXPECT_TRUE(root->get("nothing")->is(Kind::None));
  const Value* t = root->get("weight");
  ASSERT_TRUE(t->is(Kind::Tensor));
  EXPECT_EQ(t->tensor.storage.dtype, DType::BF16);
  EXPECT_EQ(t->tensor.storage.key, "7");
  EXPECT_EQ(t->tensor.storage.numel, 12);
  EXPECT_EQ(t->tensor.offset, 2);
  EXPECT_EQ(t->tensor.shape, (Shape{2, 3}));
  EXPECT_EQ(t->tensor.stride, (Shape{3, 1}));
}

TEST(Pickle, RefusesGlobalsOutsideTheAllowList) {
  // The classic exploit: os.system("...") via GLOBAL + REDUCE.
  const std::string exploit =
      B("\x80\x02"
        "cos\nsystem\n"
        "X\x02\x00\x00\x00id\x85R.");
  const std::string msg = error_of(exploit);
  EXPECT_NE(msg.find("global 'os.system' is not allowed"), std::string::npos) << msg;
  EXPECT_NE(error_of(B("\x80\x02"
                       "cbuiltins\neval\n."))
                .find("not allowed"),
            std::string::npos);
  EXPECT_NE(error_of(B("\x80\x02"
                       "ctorch._utils\n_rebuild_tensor\n."))
                .find("not allowed"),
            std::string::npos);
}

TEST(Pickle, RejectsMalformedStreams) {
  EXPECT_NE(error_of(B("")).find("truncated"), std::string::npos);
  EXPECT_NE(error_of(B("\x80\x02}")).find("without a STOP"), std::string::npos);
  EXPECT_NE(error_of(B("\x80\x04}.")).find("protocol 4"), std::string::npos);
  EXPECT_NE(error_of(B("\x80\x02\xff.")).find("opcode 0xff"), std::string::npos);
  EXPECT_NE(error_of(B("\x80\x02h\x05.")).find("memo index 5"), std::string::npos);
  EXPECT_NE(error_of(B("\x80\x02"
                       "0."))
                .find("underflow"),
            std::string::npos);
  EXPECT_NE(error_of(B("\x80\x02X\xff\xff\xff\x7f"
                       "abc."))
                .find("truncated"),
            std::string::npos);
  EXPECT_NE(error_of(B("\x80\x02K\x01K\x02.")).find("STOP with 2 values"), std::string::npos);
  EXPECT_NE(error_of(B("\x80\x02]K\x01K\x02s.")).find("not a dict"), std::string::npos);
  EXPECT_NE(error_of(B("\x80\x02(X\x03\x00\x00\x00"
                       "abcQ."))
                .find("storage"),
            std::string::npos);
  // Errors give the byte offset of the failing opcode.
  EXPECT_NE(error_of(B("\x80\x02\xfe.")).find("pickle byte 2"), std::string::npos);
}

TEST(Pickle, SelfReferenceDoesNotLeakOrLoop) {
  // l = []; l.append(l): values live in an arena, so a cycle is harmless.
  const std::string cyclic =
      B("\x80\x02]q\x00h\x00"
        "a.");
  Document doc = parse(as_bytes(cyclic), "x.pkl");
  ASSERT_TRUE(doc.root()->is(Kind::List));
  EXPECT_EQ(doc.root()->items.at(0), doc.root());
}

}  // namespace
}  // namespace cosy::pickle
