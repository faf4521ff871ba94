// A lock-free, intrusive, multi-producer single-consumer FIFO, after Dmitry Vyukov's
// "intrusive MPSC node-based queue". Producers are wait-free (one exchange, one store); the
// consumer never blocks and never allocates.
//
// Shape: a singly linked list from tail_ (consumer end) to head_ (producer end), with a stub node
// that keeps the list non-empty so producers never touch tail_. Nodes are owned by the caller and
// sit in at most one queue at a time; a node may be pushed again once pop() has returned it.
//
// Memory-ordering invariants:
//  1. push() publishes a node with head_.exchange(acq_rel). The release half orders the node's
//     payload and its `next = nullptr` before the exchange; the acquire half makes the previous
//     pusher's `next = nullptr` happen-before our link store into that node, so a stale null can
//     never overwrite our link.
//  2. push() then links the predecessor with next.store(release). The consumer reads links with
//     load(acquire), so everything the producer wrote before push() is visible once the node is
//     reached: this is the only edge that carries payload from producer to consumer.
//  3. Between a producer's exchange and its link store, the list is briefly cut. pop() then
//     returns nullptr although the queue is not empty; the node appears once the link lands.
//     Callers that sleep when pop() says empty must therefore have the producer signal *after*
//     push() returns (the Reactor's wake flag does exactly that).
//  4. FIFO order is the order of the head_ exchanges, which is a total order consistent with each
//     producer's program order: tasks of one producer come out in the order they went in.
#pragma once

#include <atomic>

namespace wsx::net {

struct MpscNode {
    std::atomic<MpscNode*> next{nullptr};
};

class MpscQueue {
  public:
    MpscQueue() noexcept : head_(&stub_), tail_(&stub_) {}
    MpscQueue(const MpscQueue&) = delete;
    MpscQueue& operator=(const MpscQueue&) = delete;

    // Any thread.
    void push(MpscNode& node) noexcept {
        node.next.store(nullptr, std::memory_order_relaxed);
        MpscNode* previous = head_.exchange(&node, std::memory_order_acq_rel);  // invariant 1
        previous->next.store(&node, std::memory_order_release);                 // invariant 2
    }

    // Consumer thread only. Returns the oldest node, or nullptr when the queue is empty or its
    // next node is still being linked (invariant 3).
    MpscNode* pop() noexcept {
        MpscNode* tail = tail_;
        MpscNode* next = tail->next.load(std::memory_order_acquire);
        if (tail == &stub_) {
            if (next == nullptr) return nullptr;
            tail_ = next;
            tail = next;
            next = next->next.load(std::memory_order_acquire);
        }
        if (next != nullptr) {
            tail_ = next;
            return tail;
        }
        // `tail` is the last linked node. If a producer has already swung head_ past it, its link
        // is in flight: report empty rather than spin.
        if (tail != head_.load(std::memory_order_acquire)) return nullptr;
        // `tail` is the only node. Re-insert the stub behind it so `tail` can be detached without
        // leaving the list empty.
        push(stub_);
        next = tail->next.load(std::memory_order_acquire);
        if (next != nullptr) {
            tail_ = next;
            return tail;
        }
        return nullptr;
    }

  private:
    // Producers hammer head_, the consumer owns tail_: keep them on separate cache lines.
    alignas(64) std::atomic<MpscNode*> head_;
    alignas(64) MpscNode* tail_;
    MpscNode stub_;
};

}  // namespace wsx::net
