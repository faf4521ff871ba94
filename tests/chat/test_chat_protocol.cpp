// apps/chat_protocol: every client message type, every error, unicode, and hostile input.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chat_protocol.hpp"

using namespace wsx::apps::chat;
using Json = nlohmann::json;

namespace {

Request parsed(std::string_view text) {
    const ParseResult result = parse_request(text);
    const auto* request = std::get_if<Request>(&result);
    INFO("input: ", std::string(text.substr(0, 200)));
    REQUIRE(request != nullptr);
    return *request;
}

ProtocolError refused(std::string_view text) {
    const ParseResult result = parse_request(text);
    const auto* problem = std::get_if<ProtocolError>(&result);
    INFO("input: ", std::string(text.substr(0, 200)));
    REQUIRE(problem != nullptr);
    CHECK_FALSE(problem->message.empty());
    return *problem;
}

Json json_of(const std::string& text) {
    const Json value = Json::parse(text, nullptr, false);
    REQUIRE_FALSE(value.is_discarded());
    return value;
}

}  // namespace

TEST_CASE("subscribe names its topic") {
    const Request r = parsed(R"({"type":"subscribe","topic":"general"})");
    CHECK(r.type == RequestType::subscribe);
    CHECK(r.topic == "general");
}

TEST_CASE("unsubscribe names its topic") {
    const Request r = parsed(R"({"topic":"general","type":"unsubscribe"})");
    CHECK(r.type == RequestType::unsubscribe);
    CHECK(r.topic == "general");
}

TEST_CASE("publish carries any JSON value as data, re-serialised compactly") {
    const Request text = parsed(R"({"type":"publish","topic":"t","data":"hello"})");
    CHECK(text.type == RequestType::publish);
    CHECK(text.topic == "t");
    CHECK(text.data_json == R"("hello")");

    const Request object =
        parsed(R"({ "type" : "publish", "topic" : "t", "data" : { "a" : [1, 2.5, true, null] } })");
    CHECK(object.data_json == R"({"a":[1,2.5,true,null]})");

    CHECK(parsed(R"({"type":"publish","topic":"t","data":null})").data_json == "null");
    CHECK(parsed(R"({"type":"publish","topic":"t","data":-7})").data_json == "-7");
}

TEST_CASE("ping, rooms and nick are recognised") {
    CHECK(parsed(R"({"type":"ping"})").type == RequestType::ping);
    CHECK(parsed(R"({"type":"rooms"})").type == RequestType::rooms);
    const Request nick = parsed(R"({"type":"nick","nick":"alice"})");
    CHECK(nick.type == RequestType::nick);
    CHECK(nick.nick == "alice");
}

TEST_CASE("unknown fields are ignored") {
    const Request r = parsed(R"({"type":"subscribe","topic":"a","extra":{"x":[1]},"id":7})");
    CHECK(r.type == RequestType::subscribe);
    CHECK(r.topic == "a");
}

TEST_CASE("request type names are the wire names") {
    for (const auto type : {RequestType::subscribe, RequestType::unsubscribe, RequestType::publish,
                            RequestType::nick, RequestType::rooms, RequestType::ping}) {
        const std::string name(request_type_name(type));
        std::string text = R"({"type":")" + name + R"(","topic":"t","data":1,"nick":"n"})";
        CHECK(parsed(text).type == type);
    }
}

TEST_CASE("text that is not JSON is refused as invalid JSON") {
    for (const char* text : {"", " ", "hello", "{", R"({"type":"ping")", R"({"type":ping})",
                             "{'type':'ping'}", R"({"type":"ping"} x)", "\xff\xfe"}) {
        CHECK(refused(text).message == "invalid JSON");
    }
}

TEST_CASE("JSON that is not an object is refused") {
    for (const char* text : {"[]", "1", "\"ping\"", "null", "true", R"([{"type":"ping"}])"}) {
        CHECK(refused(text).message == "a message must be a JSON object");
    }
}

TEST_CASE("a missing or non-string type is refused") {
    CHECK(refused("{}").message == R"(missing "type")");
    CHECK(refused(R"({"topic":"a"})").message == R"(missing "type")");
    CHECK(refused(R"({"type":1})").message == R"("type" must be a string)");
    CHECK(refused(R"({"type":null})").message == R"("type" must be a string)");
    CHECK(refused(R"({"type":["ping"]})").message == R"("type" must be a string)");
}

TEST_CASE("an unknown type is refused by name") {
    CHECK(refused(R"({"type":"shout"})").message == R"(unknown type "shout")");
    CHECK(refused(R"({"type":"PING"})").message == R"(unknown type "PING")");
    CHECK(refused(R"({"type":""})").message == R"(unknown type "")");
}

TEST_CASE("subscribe, unsubscribe and publish need a string topic") {
    for (const char* type : {"subscribe", "unsubscribe", "publish"}) {
        CAPTURE(type);
        const std::string head = std::string(R"({"type":")") + type + R"(","data":1)";
        CHECK(refused(head + "}").message == R"(missing "topic")");
        CHECK(refused(head + R"(,"topic":5})").message == R"("topic" must be a string)");
        CHECK(refused(head + R"(,"topic":null})").message == R"("topic" must be a string)");
        CHECK(refused(head + R"(,"topic":""})").message.find("topic must be") == 0);
    }
}

TEST_CASE("a topic longer than the limit is refused, one at the limit is accepted") {
    const std::string at_limit(kMaxTopicBytes, 'x');
    const std::string over(kMaxTopicBytes + 1, 'x');
    CHECK(parsed(R"({"type":"subscribe","topic":")" + at_limit + "\"}").topic == at_limit);
    CHECK(refused(R"({"type":"subscribe","topic":")" + over + "\"}").message ==
          "topic is longer than 64 bytes");
    const std::string huge(1 << 20, 'y');
    CHECK(refused(R"({"type":"publish","data":1,"topic":")" + huge + "\"}").message ==
          "topic is longer than 64 bytes");
}

TEST_CASE("topics and nicks may not contain control characters or be blank") {
    CHECK(refused(R"({"type":"subscribe","topic":"a\nb"})").message.find("topic must be") == 0);
    CHECK(refused(R"({"type":"subscribe","topic":"a\u0000b"})").message.find("topic must be") == 0);
    CHECK(refused(R"({"type":"subscribe","topic":"\u007f"})").message.find("topic must be") == 0);
    CHECK(refused(R"({"type":"subscribe","topic":"   "})").message.find("topic must be") == 0);
    CHECK(refused(R"({"type":"nick","nick":"a\tb"})").message.find("nick must be") == 0);
    CHECK(refused(R"({"type":"nick","nick":""})").message.find("nick must be") == 0);
    CHECK(refused(R"({"type":"nick"})").message == R"(missing "nick")");
    CHECK(refused(R"({"type":"nick","nick":{}})").message == R"("nick" must be a string)");
    CHECK(refused(R"({"type":"nick","nick":")" + std::string(kMaxNickBytes + 1, 'n') + "\"}")
              .message.find("nick must be") == 0);
    CHECK(parsed(R"({"type":"nick","nick":")" + std::string(kMaxNickBytes, 'n') + "\"}").nick ==
          std::string(kMaxNickBytes, 'n'));
}

TEST_CASE("publish without data is refused and names the topic") {
    const ProtocolError e = refused(R"({"type":"publish","topic":"lobby"})");
    CHECK(e.message == R"(missing "data")");
    CHECK(e.topic == "lobby");
}

TEST_CASE("unicode topics, nicks and data pass through intact") {
    // "Zürich 東京 🎉" raw and as \u escapes (with a surrogate pair).
    const std::string raw = "Z\xc3\xbcrich \xe6\x9d\xb1\xe4\xba\xac \xf0\x9f\x8e\x89";
    CHECK(parsed(R"({"type":"subscribe","topic":")" + raw + "\"}").topic == raw);
    CHECK(parsed(R"({"type":"subscribe","topic":"Z\u00fcrich \u6771\u4eac \ud83c\udf89"})").topic ==
          raw);
    CHECK(parsed(R"({"type":"nick","nick":")" + raw + "\"}").nick == raw);
    const Request p = parsed(R"({"type":"publish","topic":"t","data":")" + raw + "\"}");
    CHECK(p.data_json == "\"" + raw + "\"");
    // A topic of 16 four-byte characters is exactly 64 bytes; one more is over.
    std::string emoji;
    for (int i = 0; i < 16; ++i)
        emoji += "\xf0\x9f\x8e\x89";
    CHECK(parsed(R"({"type":"subscribe","topic":")" + emoji + "\"}").topic == emoji);
    CHECK(refused(R"({"type":"subscribe","topic":")" + emoji + "a\"}").message ==
          "topic is longer than 64 bytes");
}

TEST_CASE("invalid UTF-8 and lone surrogates are refused as invalid JSON") {
    CHECK(refused("{\"type\":\"subscribe\",\"topic\":\"\xc3\x28\"}").message == "invalid JSON");
    CHECK(refused(R"({"type":"subscribe","topic":"\ud800"})").message == "invalid JSON");
    CHECK(refused("{\"type\":\"publish\",\"topic\":\"t\",\"data\":\"\xed\xa0\x80\"}").message ==
          "invalid JSON");
}

TEST_CASE("data with HTML is carried as data, never interpreted") {
    const Request p =
        parsed(R"({"type":"publish","topic":"t","data":"<img src=x onerror=alert(1)>"})");
    CHECK(json_of(p.data_json) == "<img src=x onerror=alert(1)>");
}

TEST_CASE("nesting deeper than the limit is refused before parsing") {
    const auto nested = [](std::size_t depth) {
        return R"({"type":"publish","topic":"t","data":)" + std::string(depth - 1, '[') +
               std::string(depth - 1, ']') + "}";
    };
    CHECK(parsed(nested(kMaxJsonDepth)).type == RequestType::publish);
    CHECK(refused(nested(kMaxJsonDepth + 1)).message == "JSON nested deeper than 32 levels");
    // A megabyte of brackets: refused at once, no recursion.
    CHECK(refused(std::string(1 << 20, '[')).message == "JSON nested deeper than 32 levels");
    CHECK(refused(std::string(1 << 20, '{')).message == "JSON nested deeper than 32 levels");
}

TEST_CASE("nesting depth ignores brackets inside strings and escaped quotes") {
    CHECK(json_nesting_depth(R"({"a":"[[[[{{{{"})", 32) == 1);
    CHECK(json_nesting_depth(R"({"a":"\"[[["})", 32) == 1);
    CHECK(json_nesting_depth(R"({"a":"\\"}[[[)", 32) == 3);
    CHECK(json_nesting_depth("[[]][[[]]]", 32) == 3);
    CHECK(json_nesting_depth("]]]][", 32) == 1);
    CHECK(json_nesting_depth("", 32) == 0);
    CHECK(json_nesting_depth(std::string(100, '['), 5) == 6);
}

TEST_CASE("huge valid input parses: a megabyte of data") {
    const std::string big(1 << 20, 'm');
    const Request p = parsed(R"({"type":"publish","topic":"t","data":")" + big + "\"}");
    CHECK(p.data_json.size() == big.size() + 2);
}

TEST_CASE("binary garbage of every byte value never crashes and is refused") {
    std::string bytes;
    for (int i = 0; i < 256; ++i)
        bytes.push_back(static_cast<char>(i));
    for (std::size_t cut = 0; cut < bytes.size(); cut += 7) {
        CHECK(std::holds_alternative<ProtocolError>(parse_request(bytes.substr(cut))));
    }
}

TEST_CASE("format_message embeds data verbatim and escapes names") {
    const std::string text = format_message("r\"oom", R"({"k":[1,"two"]})", "al<ice>\n", 1234567);
    CHECK(
        text ==
        R"({"type":"message","topic":"r\"oom","data":{"k":[1,"two"]},"from":"al<ice>\n","time":1234567})");
    const Json j = json_of(text);
    CHECK(j["topic"] == "r\"oom");
    CHECK(j["from"] == "al<ice>\n");
}

TEST_CASE("formatting repairs invalid UTF-8 instead of failing") {
    const Json j = json_of(format_error("bad \xff byte"));
    CHECK(j["message"] == "bad \xef\xbf\xbd byte");
}

TEST_CASE("every server message is a JSON object whose first field is its type") {
    const std::vector<RoomInfo> rooms{{"general", 3}, {"\xe6\x9d\xb1", 1}};
    const std::vector<std::pair<std::string, std::string>> cases{
        {format_error("oops"), "error"},
        {format_error("oops", "t"), "error"},
        {format_subscribed("t"), "subscribed"},
        {format_unsubscribed("t"), "unsubscribed"},
        {format_nick("n"), "nick"},
        {format_welcome("guest-1"), "welcome"},
        {format_rooms(rooms), "rooms"},
        {format_rooms({}), "rooms"},
        {format_pong(), "pong"},
        {format_message("t", "1", "n", 0), "message"},
    };
    for (const auto& entry : cases) {
        // Named copies, not structured bindings: clang 14 cannot capture those in CAPTURE.
        const std::string& text = entry.first;
        const std::string& type = entry.second;
        CAPTURE(text);
        CHECK(text.rfind(R"({"type":")" + type + "\"", 0) == 0);
        CHECK(json_of(text)["type"] == type);
    }
}

TEST_CASE("server messages carry their fields") {
    CHECK(format_error("oops") == R"({"type":"error","message":"oops"})");
    CHECK(format_error("oops", "t") == R"({"type":"error","message":"oops","topic":"t"})");
    CHECK(format_subscribed("t") == R"({"type":"subscribed","topic":"t"})");
    CHECK(format_unsubscribed("t") == R"({"type":"unsubscribed","topic":"t"})");
    CHECK(format_nick("n") == R"({"type":"nick","nick":"n"})");
    CHECK(format_pong() == R"({"type":"pong"})");
    CHECK(format_welcome("guest-1") ==
          R"({"type":"welcome","nick":"guest-1","max_topic":64,"max_nick":32})");
    const std::vector<RoomInfo> rooms{{"general", 3}, {"dev", 0}};
    CHECK(
        format_rooms(rooms) ==
        R"({"type":"rooms","rooms":[{"topic":"general","subscribers":3},{"topic":"dev","subscribers":0}]})");
    CHECK(format_rooms({}) == R"({"type":"rooms","rooms":[]})");
}

TEST_CASE("a formatted publish parses back to the same data") {
    const Request p =
        parsed(R"({"type":"publish","topic":"t","data":{"text":"hi \u00e9","n":[1,2]}})");
    const Json j = json_of(format_message(p.topic, p.data_json, "bob", 42));
    CHECK(j["data"]["text"] == "hi \xc3\xa9");
    CHECK(j["data"]["n"] == Json::array({1, 2}));
    CHECK(j["time"] == 42);
    CHECK(j["from"] == "bob");
}
