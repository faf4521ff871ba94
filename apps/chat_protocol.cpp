#include "chat_protocol.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "proto/utf8.hpp"

namespace wsx::apps::chat {

namespace {

// Insertion-ordered, so every message starts with its "type".
using Json = nlohmann::ordered_json;

// Compact JSON; a string that is not UTF-8 is repaired (U+FFFD) rather than thrown about, so
// formatting can never fail.
std::string dump(const Json& value) {
    return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string quote(std::string_view text) {
    return dump(Json(std::string(text)));
}

bool valid_name(std::string_view name, std::size_t max_bytes) noexcept {
    if (name.empty() || name.size() > max_bytes) return false;
    const bool has_control = std::any_of(name.begin(), name.end(), [](char c) {
        const auto byte = static_cast<unsigned char>(c);
        return byte < 0x20 || byte == 0x7f;
    });
    if (has_control) return false;
    if (name.find_first_not_of(' ') == std::string_view::npos) return false;
    return proto::is_valid_utf8({reinterpret_cast<const std::uint8_t*>(name.data()), name.size()});
}

ProtocolError error(std::string message, std::string topic = {}) {
    return ProtocolError{std::move(message), std::move(topic)};
}

// The string member `key` of `object`: nullptr when absent, error text when not a string.
const std::string* string_member(const Json& object, const char* key, std::string& problem) {
    const auto it = object.find(key);
    if (it == object.end()) {
        problem = std::string("missing \"") + key + "\"";
        return nullptr;
    }
    if (!it->is_string()) {
        problem = std::string("\"") + key + "\" must be a string";
        return nullptr;
    }
    return it->get_ptr<const std::string*>();
}

std::variant<std::string, ProtocolError> topic_of(const Json& object) {
    std::string problem;
    const std::string* topic = string_member(object, "topic", problem);
    if (topic == nullptr) return error(problem);
    if (topic->size() > kMaxTopicBytes) {
        return error("topic is longer than " + std::to_string(kMaxTopicBytes) + " bytes");
    }
    if (!valid_topic(*topic)) {
        return error("topic must be 1-" + std::to_string(kMaxTopicBytes) +
                     " bytes of text without control characters");
    }
    return *topic;
}

}  // namespace

std::string_view request_type_name(RequestType type) noexcept {
    switch (type) {
        case RequestType::subscribe:
            return "subscribe";
        case RequestType::unsubscribe:
            return "unsubscribe";
        case RequestType::publish:
            return "publish";
        case RequestType::nick:
            return "nick";
        case RequestType::rooms:
            return "rooms";
        case RequestType::ping:
            return "ping";
    }
    return "unknown";
}

bool valid_topic(std::string_view topic) noexcept {
    return valid_name(topic, kMaxTopicBytes);
}

bool valid_nick(std::string_view nick) noexcept {
    return valid_name(nick, kMaxNickBytes);
}

std::size_t json_nesting_depth(std::string_view text, std::size_t limit) noexcept {
    std::size_t depth = 0;
    std::size_t deepest = 0;
    bool in_string = false;
    bool escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            deepest = std::max(deepest, ++depth);
            if (deepest > limit) return deepest;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return deepest;
}

ParseResult parse_request(std::string_view text) {
    if (json_nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth) {
        return error("JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    }
    const Json message = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (message.is_discarded()) return error("invalid JSON");
    if (!message.is_object()) return error("a message must be a JSON object");

    std::string problem;
    const std::string* type = string_member(message, "type", problem);
    if (type == nullptr) return error(problem);

    Request request;
    if (*type == "ping") {
        request.type = RequestType::ping;
        return request;
    }
    if (*type == "rooms") {
        request.type = RequestType::rooms;
        return request;
    }
    if (*type == "nick") {
        request.type = RequestType::nick;
        const std::string* nick = string_member(message, "nick", problem);
        if (nick == nullptr) return error(problem);
        if (!valid_nick(*nick)) {
            return error("nick must be 1-" + std::to_string(kMaxNickBytes) +
                         " bytes of text without control characters");
        }
        request.nick = *nick;
        return request;
    }
    if (*type == "subscribe") {
        request.type = RequestType::subscribe;
    } else if (*type == "unsubscribe") {
        request.type = RequestType::unsubscribe;
    } else if (*type == "publish") {
        request.type = RequestType::publish;
    } else {
        return error("unknown type " + quote(*type));
    }
    auto topic = topic_of(message);
    if (auto* failed = std::get_if<ProtocolError>(&topic)) return std::move(*failed);
    request.topic = std::move(std::get<std::string>(topic));
    if (request.type == RequestType::publish) {
        const auto data = message.find("data");
        if (data == message.end()) return error("missing \"data\"", request.topic);
        request.data_json = dump(*data);
    }
    return request;
}

std::string format_message(std::string_view topic, std::string_view data_json,
                           std::string_view from, std::int64_t time_ms) {
    std::string out;
    out.reserve(data_json.size() + topic.size() + from.size() + 80);
    out.append(R"({"type":"message","topic":)").append(quote(topic));
    out.append(R"(,"data":)").append(data_json);
    out.append(R"(,"from":)").append(quote(from));
    out.append(R"(,"time":)").append(std::to_string(time_ms)).append("}");
    return out;
}

std::string format_error(std::string_view message, std::string_view topic) {
    Json out = {{"type", "error"}, {"message", std::string(message)}};
    if (!topic.empty()) out["topic"] = std::string(topic);
    return dump(out);
}

std::string format_subscribed(std::string_view topic) {
    return dump({{"type", "subscribed"}, {"topic", std::string(topic)}});
}

std::string format_unsubscribed(std::string_view topic) {
    return dump({{"type", "unsubscribed"}, {"topic", std::string(topic)}});
}

std::string format_nick(std::string_view nick) {
    return dump({{"type", "nick"}, {"nick", std::string(nick)}});
}

std::string format_welcome(std::string_view nick) {
    return dump({{"type", "welcome"},
                 {"nick", std::string(nick)},
                 {"max_topic", kMaxTopicBytes},
                 {"max_nick", kMaxNickBytes}});
}

std::string format_rooms(std::span<const RoomInfo> rooms) {
    Json list = Json::array();
    for (const RoomInfo& room : rooms) {
        list.push_back({{"topic", room.topic}, {"subscribers", room.subscribers}});
    }
    return dump({{"type", "rooms"}, {"rooms", std::move(list)}});
}

std::string format_pong() {
    return R"({"type":"pong"})";
}

}  // namespace wsx::apps::chat
