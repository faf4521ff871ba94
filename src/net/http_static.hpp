// Plain HTTP/1.1 answers next to the WebSocket endpoint: static files from one directory, the
// health check, and the small fixed responses (404, 403, 405, 426). Every response closes the
// connection (Connection: close), so there is no keep-alive state to get wrong.
//
// Safety of the file lookup: the path is percent-decoded once (RFC 3986 §2.1), must be absolute,
// may not contain NUL, backslash or a ".." segment (403), and hidden files (a segment starting
// with '.') are not served (404). The resolved file must lie inside the root after symlinks are
// followed (realpath), so a link pointing out of the directory is refused too (403).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "net/sys_result.hpp"

namespace wsx::net {

// An HTTP response ready to write: `head` (status line, headers, blank line, and for small
// responses the body too), then `file_size` bytes of `file_fd` from offset 0 when file_fd >= 0.
// Owns the file descriptor.
struct HttpResponse {
    int status = 0;
    std::string head;
    int file_fd = -1;
    std::uint64_t file_size = 0;

    HttpResponse() = default;
    HttpResponse(HttpResponse&& other) noexcept;
    HttpResponse& operator=(HttpResponse&& other) noexcept;
    HttpResponse(const HttpResponse&) = delete;
    HttpResponse& operator=(const HttpResponse&) = delete;
    ~HttpResponse();
};

using HttpHeaderPair = std::pair<std::string_view, std::string_view>;

// A complete response with a text body (omitted for HEAD, Content-Length kept) and
// Connection: close.
HttpResponse make_http_response(int status, std::string_view content_type, std::string_view body,
                                bool head_only = false,
                                std::span<const HttpHeaderPair> extra_headers = {});

// "Not Found" for 404, ...; "Unknown" for codes this module never sends.
std::string_view http_reason_phrase(int status) noexcept;

// 426 Upgrade Required with Upgrade: websocket and Sec-WebSocket-Version: 13: a plain HTTP
// request reached a WebSocket-only path (RFC 9110 §15.5.22, RFC 6455 §4.4).
HttpResponse upgrade_required_response(bool head_only);

// 200 "ok" for GET and HEAD, 405 for anything else.
HttpResponse health_response(std::string_view method);

// The Content-Type for a file name by its extension: html, css, js, json, png, svg, ico, txt
// (and a few kin); application/octet-stream otherwise.
std::string_view content_type_for(std::string_view path) noexcept;

// RFC 3986 §2.1 percent-decoding of a path. nullopt for a malformed escape or an encoded NUL.
std::optional<std::string> percent_decode(std::string_view in);

class StaticFiles {
  public:
    // Serves files below `root` (a directory; its canonical path is taken now). ENOENT /
    // ENOTDIR / EACCES ... when it is not a usable directory.
    static SysResult<StaticFiles> open(std::string_view root);

    StaticFiles() = default;
    // The canonical path of the served directory.
    const std::string& root() const noexcept { return root_; }

    // The answer to `method` `target` (origin-form, query ignored): 200 with the file (a
    // directory serves its index.html), 404, 403 (traversal, unreadable, directory without
    // index.html), 405 with Allow for methods other than GET and HEAD, 400 for a target that is
    // not a path.
    HttpResponse respond(std::string_view method, std::string_view target) const;

  private:
    explicit StaticFiles(std::string root) : root_(std::move(root)) {}
    std::string root_;  // canonical, no trailing slash (except "/")
};

}  // namespace wsx::net
