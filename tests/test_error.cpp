#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <system_error>

#include "proto/error.hpp"

using namespace wsx::proto;

TEST_CASE("frame-level errors map to close code 1002") {
    for (auto e :
         {Error::reserved_opcode, Error::reserved_bits_set, Error::control_frame_too_long,
          Error::control_frame_fragmented, Error::length_msb_set, Error::unmasked_client_frame,
          Error::masked_server_frame, Error::unexpected_continuation, Error::expected_continuation,
          Error::close_payload_one_byte, Error::invalid_close_code}) {
        CAPTURE(describe(e));
        CHECK(close_code_for(e) == 1002);
        CHECK(http_status_for(e) == 0);
    }
}

TEST_CASE("invalid payload data maps to 1007 and oversize to 1009") {
    CHECK(close_code_for(Error::invalid_utf8) == 1007);
    CHECK(close_code_for(Error::close_reason_invalid_utf8) == 1007);
    CHECK(close_code_for(Error::inflate_failed) == 1007);
    CHECK(close_code_for(Error::frame_too_big) == 1009);
    CHECK(close_code_for(Error::message_too_big) == 1009);
}

TEST_CASE("handshake errors map to the statuses of CONFORMANCE.md") {
    CHECK(http_status_for(Error::http_malformed) == 400);
    CHECK(http_status_for(Error::http_method_not_get) == 405);
    CHECK(http_status_for(Error::http_version_too_old) == 400);
    CHECK(http_status_for(Error::http_missing_host) == 400);
    CHECK(http_status_for(Error::http_missing_upgrade) == 400);
    CHECK(http_status_for(Error::http_missing_connection_upgrade) == 400);
    CHECK(http_status_for(Error::http_bad_version) == 426);
    CHECK(http_status_for(Error::http_bad_key) == 400);
    CHECK(http_status_for(Error::http_origin_forbidden) == 403);
    CHECK(http_status_for(Error::http_headers_too_large) == 431);
    CHECK(http_status_for(Error::http_too_many_connections) == 503);
    CHECK(close_code_for(Error::http_bad_key) == 0);
}

TEST_CASE("errors convert to std::error_code with a message") {
    std::error_code ec = Error::invalid_utf8;
    CHECK(ec.category().name() == std::string("wsx"));
    CHECK(ec.message() == "text message is not valid UTF-8");
    CHECK(ec.value() == static_cast<int>(Error::invalid_utf8));
    CHECK_FALSE(std::error_code(Error::none));
}

TEST_CASE("permessage-deflate errors map to their close codes") {
    CHECK(close_code_for(Error::inflate_failed) == 1007);
    CHECK(close_code_for(Error::deflate_failed) == 1011);  // our side failed: internal error
    CHECK(close_code_for(Error::http_bad_extension_response) == 0);
    CHECK(close_code_for(Error::shared_frame_compressed) == 0);
    for (auto e : {Error::deflate_failed, Error::http_bad_extension_response,
                   Error::shared_frame_compressed}) {
        CHECK(describe(e) != "unknown error");
    }
}
