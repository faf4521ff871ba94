// The JSON protocol of `wsx chat`, as pure functions: one text message in, a request or a
// precise error out; and the server's messages formatted to text. No sockets, no clocks, no
// state: the server (cmd_chat.cpp) supplies the session's nickname and the time.
//
// Client → server (one JSON object per WebSocket text message; unknown fields are ignored):
//   {"type":"subscribe","topic":T}      join room T            → {"type":"subscribed","topic":T}
//   {"type":"unsubscribe","topic":T}    leave room T           → {"type":"unsubscribed","topic":T}
//   {"type":"publish","topic":T,"data":D}  D any JSON value    → every subscriber of T (sender
//                                       included) gets {"type":"message","topic":T,"data":D,
//                                       "from":NICK,"time":MS}
//   {"type":"nick","nick":N}            set the sender name    → {"type":"nick","nick":N}
//   {"type":"rooms"}                    list the rooms         → {"type":"rooms","rooms":[...]}
//   {"type":"ping"}                                            → {"type":"pong"}
// Server → client on connect: {"type":"welcome","nick":NICK,"max_topic":..,"max_nick":..}.
// Anything wrong is answered {"type":"error","message":TEXT} (plus "topic" when one applies),
// and the connection stays open.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace wsx::apps::chat {

// Topic (room) names: 1..64 bytes of UTF-8 without control characters, so that every one fits
// a room list line and no name can carry terminal or layout control codes.
inline constexpr std::size_t kMaxTopicBytes = 64;
// Nicknames: 1..32 bytes, same character rule.
inline constexpr std::size_t kMaxNickBytes = 32;
// Nesting of the whole request (objects and arrays). Deeper input is refused before it is
// parsed, so that neither parsing nor re-serialising `data` can exhaust the stack.
inline constexpr std::size_t kMaxJsonDepth = 32;

enum class RequestType : std::uint8_t { subscribe, unsubscribe, publish, nick, rooms, ping };

std::string_view request_type_name(RequestType type) noexcept;

struct Request {
    RequestType type = RequestType::ping;
    std::string topic;      // subscribe, unsubscribe, publish
    std::string data_json;  // publish: `data` serialised as compact JSON
    std::string nick;       // nick
};

struct ProtocolError {
    std::string message;  // for {"type":"error","message":...}
    std::string topic;    // the topic concerned, when the request named a valid one
};

using ParseResult = std::variant<Request, ProtocolError>;

// Parses one client message. Every failure is a ProtocolError saying what was wrong: not JSON,
// too deeply nested, not an object, missing or non-string "type", unknown type, missing or
// invalid "topic" / "nick", missing "data".
ParseResult parse_request(std::string_view text);

// A name that passes the topic / nickname rules above (checked by parse_request too).
bool valid_topic(std::string_view topic) noexcept;
bool valid_nick(std::string_view nick) noexcept;

// The deepest nesting of arrays and objects in `text`, counted outside strings; stops counting
// at `limit` + 1. Malformed text still gets a number (the parser rejects it afterwards).
std::size_t json_nesting_depth(std::string_view text, std::size_t limit) noexcept;

struct RoomInfo {
    std::string topic;
    std::size_t subscribers = 0;
};

// Server → client messages. Strings are escaped as JSON (invalid UTF-8 becomes U+FFFD);
// `data_json` must be valid JSON text (as parse_request produces it) and is embedded verbatim.
std::string format_message(std::string_view topic, std::string_view data_json,
                           std::string_view from, std::int64_t time_ms);
std::string format_error(std::string_view message, std::string_view topic = {});
std::string format_subscribed(std::string_view topic);
std::string format_unsubscribed(std::string_view topic);
std::string format_nick(std::string_view nick);
std::string format_welcome(std::string_view nick);
std::string format_rooms(std::span<const RoomInfo> rooms);
std::string format_pong();

}  // namespace wsx::apps::chat
