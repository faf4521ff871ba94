// Giving freed heap memory back to the system. glibc's malloc keeps what a burst of connections
// freed in its arenas (resident, counted in RSS) until something above it is freed too; a server
// whose connections all closed asks it to return those pages, so its RSS falls back to its
// baseline instead of staying at the burst's peak.
#pragma once

namespace wsx::net {

// Returns free heap pages of every malloc arena to the system (glibc: malloc_trim). Takes the
// arenas' locks and walks them: call it when the process goes idle, not per connection.
// Elsewhere (other C libraries) it does nothing.
void return_free_heap() noexcept;

}  // namespace wsx::net
