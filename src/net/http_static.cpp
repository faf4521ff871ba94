#include "net/http_static.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <memory>

namespace wsx::net {

namespace {

constexpr HttpHeaderPair kAllowGetHead[] = {{"Allow", "GET, HEAD"}};

bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; };
        if (lower(a[i]) != lower(b[i])) return false;
    }
    return true;
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string canonical_path(const std::string& path) {
    // realpath() with a null buffer allocates (POSIX.1-2008): no PATH_MAX-sized guesswork.
    const std::unique_ptr<char, decltype(&std::free)> resolved(::realpath(path.c_str(), nullptr),
                                                               &std::free);
    return resolved ? std::string(resolved.get()) : std::string();
}

bool inside(std::string_view root, std::string_view path) noexcept {
    if (root == "/") return !path.empty() && path.front() == '/';
    return path == root || (path.size() > root.size() && path.substr(0, root.size()) == root &&
                            path[root.size()] == '/');
}

HttpResponse error_response(int status, bool head_only) {
    std::string body(http_reason_phrase(status));
    body.push_back('\n');
    return make_http_response(status, "text/plain; charset=utf-8", body, head_only);
}

}  // namespace

HttpResponse::HttpResponse(HttpResponse&& other) noexcept
    : status(other.status),
      head(std::move(other.head)),
      file_fd(std::exchange(other.file_fd, -1)),
      file_size(other.file_size) {}

HttpResponse& HttpResponse::operator=(HttpResponse&& other) noexcept {
    if (this != &other) {
        if (file_fd >= 0) ::close(file_fd);
        status = other.status;
        head = std::move(other.head);
        file_fd = std::exchange(other.file_fd, -1);
        file_size = other.file_size;
    }
    return *this;
}

HttpResponse::~HttpResponse() {
    if (file_fd >= 0) ::close(file_fd);
}

std::string_view http_reason_phrase(int status) noexcept {
    switch (status) {
        case 200:
            return "OK";
        case 400:
            return "Bad Request";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 426:
            return "Upgrade Required";
        case 500:
            return "Internal Server Error";
        case 503:
            return "Service Unavailable";
        default:
            return "Unknown";
    }
}

HttpResponse make_http_response(int status, std::string_view content_type, std::string_view body,
                                bool head_only, std::span<const HttpHeaderPair> extra_headers) {
    HttpResponse response;
    response.status = status;
    std::string& out = response.head;
    out.reserve(160 + body.size());
    out.append("HTTP/1.1 ").append(std::to_string(status)).append(" ");
    out.append(http_reason_phrase(status)).append("\r\n");
    for (const auto& [name, value] : extra_headers)
        out.append(name).append(": ").append(value).append("\r\n");
    out.append("Content-Type: ").append(content_type).append("\r\n");
    out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
    out.append("Connection: close\r\n\r\n");
    // RFC 9110 §9.3.2: HEAD gets GET's headers, Content-Length included, and no body.
    if (!head_only) out.append(body);
    return response;
}

HttpResponse upgrade_required_response(bool head_only) {
    static constexpr HttpHeaderPair headers[] = {
        {"Upgrade", "websocket"},
        {"Connection", "Upgrade"},
        {"Sec-WebSocket-Version", "13"},
    };
    return make_http_response(426, "text/plain; charset=utf-8", "this path speaks WebSocket only\n",
                              head_only, headers);
}

HttpResponse health_response(std::string_view method) {
    if (method != "GET" && method != "HEAD") {
        return make_http_response(405, "text/plain; charset=utf-8", "Method Not Allowed\n", false,
                                  kAllowGetHead);
    }
    return make_http_response(200, "text/plain; charset=utf-8", "ok\n", method == "HEAD");
}

std::string_view content_type_for(std::string_view path) noexcept {
    const std::size_t slash = path.rfind('/');
    const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    const std::size_t dot = name.rfind('.');
    if (dot == std::string_view::npos) return "application/octet-stream";
    const std::string_view ext = name.substr(dot + 1);
    struct Entry {
        std::string_view ext;
        std::string_view type;
    };
    static constexpr Entry table[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"png", "image/png"},
        {"svg", "image/svg+xml"},
        {"ico", "image/x-icon"},
        {"txt", "text/plain; charset=utf-8"},
        {"wasm", "application/wasm"},
    };
    for (const Entry& e : table) {
        if (iequals(ext, e.ext)) return e.type;
    }
    return "application/octet-stream";
}

std::optional<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (in.size() - i < 3) return std::nullopt;  // '%' needs two hex digits after it
        const int hi = hex_value(in[i + 1]);
        const int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        const char c = static_cast<char>(hi * 16 + lo);
        if (c == '\0') return std::nullopt;
        out.push_back(c);
        i += 2;
    }
    return out;
}

SysResult<StaticFiles> StaticFiles::open(std::string_view root) {
    const std::string canonical = canonical_path(std::string(root));
    if (canonical.empty()) return {{}, errno != 0 ? errno : ENOENT};
    struct stat st {};
    if (::stat(canonical.c_str(), &st) != 0) return {{}, errno};
    if (!S_ISDIR(st.st_mode)) return {{}, ENOTDIR};
    return {StaticFiles(canonical), 0};
}

HttpResponse StaticFiles::respond(std::string_view method, std::string_view target) const {
    const bool head_only = method == "HEAD";
    if (method != "GET" && !head_only) {
        return make_http_response(405, "text/plain; charset=utf-8", "Method Not Allowed\n", false,
                                  kAllowGetHead);
    }
    const std::string_view raw_path = target.substr(0, target.find_first_of("?#"));
    if (raw_path.empty() || raw_path.front() != '/') return error_response(400, head_only);
    const std::optional<std::string> decoded = percent_decode(raw_path);
    if (!decoded) return error_response(400, head_only);

    // Walk the segments: ".." anywhere is a traversal attempt, whatever it would resolve to.
    std::string relative;
    std::string_view rest = *decoded;
    while (!rest.empty()) {
        const std::size_t slash = rest.find('/');
        const std::string_view segment = rest.substr(0, slash);
        rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
        if (segment.empty() || segment == ".") continue;
        if (segment == ".." || segment.find('\\') != std::string_view::npos) {
            return error_response(403, head_only);
        }
        if (segment.front() == '.') return error_response(404, head_only);  // hidden files
        relative.append("/").append(segment);
    }

    std::string path = root_;
    if (!relative.empty()) path = root_ == "/" ? relative : root_ + relative;
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return error_response(errno == EACCES ? 403 : 404, head_only);
    }
    if (S_ISDIR(st.st_mode)) {
        path.append("/index.html");
        if (::stat(path.c_str(), &st) != 0) return error_response(403, head_only);
    }
    if (!S_ISREG(st.st_mode)) return error_response(403, head_only);
    // Symlinks may point anywhere: the file served must still be inside the root.
    if (!inside(root_, canonical_path(path))) return error_response(403, head_only);

    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return error_response(errno == EACCES ? 403 : 404, head_only);
    struct stat opened {};
    if (::fstat(fd, &opened) != 0 || !S_ISREG(opened.st_mode)) {
        ::close(fd);
        return error_response(403, head_only);
    }

    HttpResponse response;
    response.status = 200;
    std::string& out = response.head;
    out.append("HTTP/1.1 200 OK\r\nContent-Type: ").append(content_type_for(path)).append("\r\n");
    out.append("Content-Length: ").append(std::to_string(opened.st_size)).append("\r\n");
    out.append("X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n");
    if (head_only) {
        ::close(fd);
    } else {
        response.file_fd = fd;
        response.file_size = static_cast<std::uint64_t>(opened.st_size);
    }
    return response;
}

}  // namespace wsx::net
