#include "server/speech_request.h"

#include <gtest/gtest.h>

#include "server/api_error.h"
#include "server/quality_guard_request.h"

namespace cosy::server {
namespace {

SpeechLimits limits() {
  SpeechLimits l;
  l.models = {"cosyvoice2"};
  l.max_input_chars = 50;
  return l;
}

TEST(SpeechRequest, TheOpenAiFieldsAndTheExtensions) {
  const auto r = parse_speech_request(
      R"({"model":"cosyvoice2","input":"Hello there.","voice":{"id":"v1"},
          "response_format":"flac","stream_format":"sse","seed":7,"temperature":0.8,
          "top_p":0.7,"top_k":10,"sampling":"top-k","speed":1.0,"instructions":"",
          "forced_tokens_per_text_token":7.5,"cross_lingual":true,"num_beams":4,
          "length_penalty":0.5})",
      limits());
  EXPECT_DOUBLE_EQ(r.forced_tokens_per_text_token, 7.5);
  EXPECT_EQ(r.beams.num_beams, 4);
  EXPECT_DOUBLE_EQ(r.beams.length_penalty, 0.5);
  EXPECT_TRUE(r.cross_lingual);
  EXPECT_EQ(r.input, "Hello there.");
  EXPECT_EQ(r.voice, "v1");
  EXPECT_EQ(r.format, AudioEncoding::Flac);
  EXPECT_EQ(r.stream_format, StreamFormat::Sse);
  EXPECT_EQ(r.sampling.seed, 7u);
  EXPECT_DOUBLE_EQ(r.sampling.temperature, 0.8);
  EXPECT_EQ(r.sampling.top_k, 10);
  EXPECT_EQ(r.sampling.method, SamplingMethod::TopKTopP);
  // Defaults: OpenAI's mp3, raw audio; stream: true means SSE unless stream_format says.
  const auto d =
      parse_speech_request(R"({"model":"cosyvoice2","input":"a","voice":"v"})", limits());
  EXPECT_EQ(d.format, AudioEncoding::Mp3);
  EXPECT_EQ(d.beams.num_beams, 1);  // sampling
  EXPECT_FALSE(d.cross_lingual);
  EXPECT_EQ(d.stream_format, StreamFormat::Audio);
  EXPECT_EQ(parse_speech_request(R"({"model":"cosyvoice2","input":"a","voice":"v","stream":true})",
                                 limits())
                .stream_format,
            StreamFormat::Sse);
  EXPECT_EQ(parse_speech_request(R"({"model":"cosyvoice2","input":"a","voice":"v","stream":true,
                                     "stream_format":"audio"})",
                                 limits())
                .stream_format,
            StreamFormat::Audio);
}

struct Bad {
  const char* body;
  int status;
  const char* param;
  const char* says;
};

TEST(SpeechRequest, EveryMalformedBodyIsAClearError) {
  const std::string ok = R"("model":"cosyvoice2","input":"hi","voice":"v")";
  const Bad cases[] = {
      {"", 400, "", "not valid JSON"},
      {"{", 400, "", "not valid JSON"},
      {"[1,2]", 400, "", "must be a JSON object"},
      {"\"text\"", 400, "", "must be a JSON object"},
      {R"({"input":"hi","voice":"v"})", 400, "model", "'model' is required"},
      {R"({"model":"cosyvoice2","voice":"v"})", 400, "input", "'input' is required"},
      {R"({"model":"cosyvoice2","input":"hi"})", 400, "voice", "'voice' is required"},
      {R"({"model":"tts-1","input":"hi","voice":"v"})", 404, "model", "does not exist"},
      {R"({"model":5,"input":"hi","voice":"v"})", 400, "model", "must be a string, not a number"},
      {R"({"model":"cosyvoice2","input":["hi"],"voice":"v"})", 400, "input", "not an array"},
      {R"({"model":"cosyvoice2","input":"   ","voice":"v"})", 400, "input", "'input' is empty"},
      {R"({"model":"cosyvoice2","input":"","voice":"v"})", 400, "input", "'input' is empty"},
      {R"({"model":"cosyvoice2","input":"01234567890123456789012345678901234567890123456789x","voice":"v"})",
       413, "input", "51 characters, over this server's limit of 50"},
      {"{\"model\":\"cosyvoice2\",\"input\":\"\\udc00\",\"voice\":\"v\"}", 400, "",
       "not valid JSON"},
      {R"({"model":"cosyvoice2","input":"hi","voice":null})", 400, "voice", "not null"},
      {R"({"model":"cosyvoice2","input":"hi","voice":{"name":"v"}})", 400, "voice",
       "unknown field 'voice.name'"},
      {R"({"model":"cosyvoice2","input":"hi","voice":{}})", 400, "voice", "needs an 'id'"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","response_format":"aac"})", 400,
       "response_format", "supported: pcm, wav, flac, opus, mp3"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","response_format":"ogg"})", 400,
       "response_format", "not supported"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","speed":3})", 400, "speed",
       "between 0.5 and 2.0"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","speed":0.25})", 400, "speed",
       "between 0.5 and 2.0"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","speed":"fast"})", 400, "speed",
       "must be a number"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","forced_tokens_per_text_token":-1})", 400,
       "forced_tokens_per_text_token", "in [0, 100]"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","instructions":7})", 400, "instructions",
       "must be a string"},
      {R"({"model":"cosyvoice2","input":"hi","ref_audio":"/etc/passwd","ref_text":"x"})", 400,
       "ref_audio", "reads no files or URLs"},
      {R"({"model":"cosyvoice2","input":"hi","ref_audio":"file:///etc/passwd","ref_text":"x"})",
       400, "ref_audio", "base64 data URL"},
      {R"({"model":"cosyvoice2","input":"hi","ref_audio":"https://example.com/a.wav","ref_text":"x"})",
       400, "ref_audio", "base64 data URL"},
      {R"({"model":"cosyvoice2","input":"hi","ref_audio":"data:audio/wav;base64,@@@@","ref_text":"x"})",
       400, "ref_audio", "base64 data URL"},
      {R"({"model":"cosyvoice2","input":"hi","ref_audio":"data:audio/wav;base64,","ref_text":"x"})",
       400, "ref_audio", "no audio"},
      {R"({"model":"cosyvoice2","input":"hi","ref_audio":"data:audio/wav;base64,UklGRg=="})", 400,
       "ref_text", "needs 'ref_text'"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","ref_text":"hello"})", 400, "ref_text",
       "goes with 'ref_audio'"},
      {R"({"model":"cosyvoice2","input":"hi"})", 400, "voice", "'voice' is required"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","stream_format":"chunks"})", 400,
       "stream_format", "audio or sse"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","stream":"yes"})", 400, "stream",
       "must be a boolean"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","seed":-1})", 400, "seed", ">= 0"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","seed":1.5})", 400, "seed",
       "must be an integer"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","seed":1e30})", 400, "seed",
       "must be an integer"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","temperature":0})", 400, "temperature",
       "(0, 10]"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","top_p":1.5})", 400, "top_p", "(0, 1]"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","top_k":-3})", 400, "top_k",
       "[0, 100000]"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","top_k":0})", 400, "top_k",
       "ras sampling needs"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","sampling":"beam"})", 400, "sampling",
       "ras, top-k or greedy"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","cross_lingual":1})", 400, "cross_lingual",
       "must be a boolean"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","cross_lingual":true,"instructions":"Speak slowly."})",
       400, "cross_lingual", "two modes"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","volume":2})", 400, "volume",
       "unknown field 'volume'"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","num_beams":0})", 400, "num_beams",
       "from 1 (sampling) to 16"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","num_beams":17})", 400, "num_beams",
       "from 1 (sampling) to 16"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","num_beams":2.5})", 400, "num_beams",
       "must be an integer"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","length_penalty":-1})", 400,
       "length_penalty", "[0, 10]"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","quality_guard":{"loop_repeats":1}})", 400,
       "quality_guard", "loop_repeats (K) must be >= 2"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","quality_guard":{"max_run":"9"}})", 400,
       "quality_guard", "'quality_guard.max_run' must be an integer"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","quality_guard":{"silent_tokens":5}})",
       400, "quality_guard", "must be an array of ids"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","quality_guard":"on"})", 400,
       "quality_guard", "true, false or an object"},
      {R"({"model":"cosyvoice2","input":"hi","voice":"v","quality_guard":{"lookahead":0}})", 400,
       "quality_guard", "rollback needs a lookahead"},
  };
  for (const Bad& c : cases) {
    try {
      parse_speech_request(c.body, limits());
      ADD_FAILURE() << "accepted: " << c.body;
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), c.status) << c.body;
      EXPECT_EQ(e.param(), c.param) << c.body;
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos)
          << c.body << ": " << e.what();
      EXPECT_NE(e.json().find("\"error\""), std::string::npos);
    }
  }
  (void)ok;
}

// quality_guard over a server's default: a boolean switches it, an object sets fields and
// turns it on unless it says otherwise, null leaves the default.
TEST(SpeechRequest, TheQualityGuardFieldMergesOverTheServersDefault) {
  const auto r = parse_speech_request(
      R"({"model":"cosyvoice2","input":"hi","voice":"v","quality_guard":{"max_run":9,"silent_tokens":[1,2]}})",
      limits());
  QualityGuardOptions base;
  base.loop_repeats = 3;
  const QualityGuardOptions g = merge_quality_guard(base, r.quality_guard);
  EXPECT_TRUE(g.enabled);
  EXPECT_EQ(g.max_run, 9);
  EXPECT_EQ(g.loop_repeats, 3);  // the server's, untouched
  EXPECT_EQ(g.silent_tokens, (std::vector<int32_t>{1, 2}));
  base.enabled = true;
  EXPECT_FALSE(merge_quality_guard(base, nlohmann::json(false)).enabled);
  EXPECT_FALSE(
      merge_quality_guard(base, nlohmann::json::parse(R"({"enabled":false,"max_run":4})")).enabled);
  EXPECT_TRUE(merge_quality_guard(base, nullptr).enabled);
  const auto plain =
      parse_speech_request(R"({"model":"cosyvoice2","input":"hi","voice":"v"})", limits());
  EXPECT_TRUE(plain.quality_guard.is_null());
}

TEST(SpeechRequest, InvalidUtf8InputIsRefused) {
  // Valid JSON escapes can still spell a lone surrogate; raw bytes in a JSON string must be
  // UTF-8 (the parser refuses them) so the check is on what the parser lets through.
  EXPECT_THROW(parse_speech_request("{\"model\":\"cosyvoice2\",\"input\":\"\xff\",\"voice\":\"v\"}",
                                    limits()),
               ApiError);
}

}  // namespace
}  // namespace cosy::server
