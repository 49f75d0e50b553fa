// A bound UDP socket read by a native thread with recvmmsg(2), for the collector's UDP listener
// (src/collector/udp-receiver.ts). Node's dgram wakes the JavaScript thread once per datagram (one libuv
// callback, one 'message' event, one new Buffer); this thread hands JavaScript whole batches instead.
//
// new UdpReceiver(host, port, { recvBufferBytes }): a non-blocking socket bound to a numeric address
// (IPv6 when the host has a ':', dual-stack: IPV6_V6ONLY off, as Node's listeners), SO_RCVBUF asked for
// recvBufferBytes (the kernel caps it at net.core.rmem_max and doubles it), SO_RXQ_OVFL on so that each
// datagram carries the socket's drop counter. Throws a JS Error with the system's reason (and `errno`).
//
// start(slots, flushMs, callback): slots are JS-owned { data: Uint8Array, meta: Int32Array } pairs (data
// at least 65536 bytes, meta 8 int32 per datagram: offset, length, source port, IPv6 scope id, source
// address as four big-endian 32-bit words, IPv4 as IPv4-mapped IPv6). The thread takes a free slot, copies
// datagrams into it (recvmmsg into a native scratch area, 64 at a time) and hands it over with one
// ThreadSafeFunction call, callback(kind 0, slot, count, drops, ''), when it is full or `flushMs` after its
// first datagram: a lone datagram waits at most flushMs (plus scheduling). JS gives the slot back with
// release(slot). When every slot is in JS's hands the thread waits: the socket's receive buffer absorbs the
// burst and what it cannot hold the kernel drops and counts (`drops`: the SO_RXQ_OVFL counter, seen with
// the next datagram that gets in). Memory is bounded by the slots. A receive error other than a transient
// one (ENOMEM, ENOBUFS: counted, retried) ends the thread with callback(1, -1, 0, drops, reason).
//
// stop() wakes the thread (eventfd), joins it and leaves the socket open (its counters stay readable);
// close() stops and closes the socket; both are idempotent, and done too when the environment is torn
// down or the object is collected.
#include <napi.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "socket_address.h"

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMsgBatch = 0;
constexpr int kMsgError = 1;
/** Datagrams asked of one recvmmsg call. */
constexpr unsigned kBurst = 64;
/** Room for any UDP payload (65507 over IPv4, 65527 over IPv6 without jumbograms). */
constexpr size_t kMaxDatagram = 65536;
/** int32 fields per datagram in a slot's meta array. */
constexpr uint32_t kMetaStride = 8;

struct Message {
  int kind;
  int slot;
  uint32_t count;
  double drops;
  std::string text;
};

enum class SlotState { Free, Filling, Ready };

struct Slot {
  uint8_t* data = nullptr;
  size_t dataCap = 0;
  int32_t* meta = nullptr;
  uint32_t capacity = 0;
  uint32_t count = 0;
  size_t used = 0;
  SlotState state = SlotState::Free;
};

class UdpReceiver : public Napi::ObjectWrap<UdpReceiver> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "UdpReceiver",
                       {InstanceMethod<&UdpReceiver::Start>("start"),
                        InstanceMethod<&UdpReceiver::Release>("release"),
                        InstanceMethod<&UdpReceiver::Stats>("stats"), InstanceMethod<&UdpReceiver::Local>("local"),
                        InstanceMethod<&UdpReceiver::Stop>("stop"), InstanceMethod<&UdpReceiver::Close>("close")});
  }

  explicit UdpReceiver(const Napi::CallbackInfo& info) : Napi::ObjectWrap<UdpReceiver>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 3 || !info[0].IsString() || !info[1].IsNumber() || !info[2].IsObject())
      throw Napi::TypeError::New(env, "new UdpReceiver(host: string, port: number, options: object)");
    std::string host = info[0].As<Napi::String>().Utf8Value();
    int port = info[1].As<Napi::Number>().Int32Value();
    Napi::Object o = info[2].As<Napi::Object>();
    int64_t rcvbuf = 0;
    if (o.Has("recvBufferBytes") && o.Get("recvBufferBytes").IsNumber())
      rcvbuf = o.Get("recvBufferBytes").As<Napi::Number>().Int64Value();
    if (port < 0 || port > 65535) throw Napi::RangeError::New(env, "port out of range");
    const bool v6 = host.find(':') != std::string::npos;
    sockaddr_storage sa{};
    socklen_t saLen = 0;
    std::string why;
    if (!flowtel::ParseNumeric(host, v6 ? AF_INET6 : AF_INET, &sa, &saLen, &why)) throw Napi::Error::New(env, why);
    flowtel::SetPort(&sa, port);
    family_ = v6 ? AF_INET6 : AF_INET;
    fd_ = socket(family_, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd_ < 0) Fail(env, "socket", errno);
    int off = 0;
    int on = 1;
    if (v6 && setsockopt(fd_, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) != 0) Fail(env, "IPV6_V6ONLY", errno);
    if (rcvbuf > 0) {
      int want = static_cast<int>(std::min<int64_t>(rcvbuf, 1 << 30));
      if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &want, sizeof want) != 0) Fail(env, "SO_RCVBUF", errno);
    }
    if (setsockopt(fd_, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on) != 0) Fail(env, "SO_RXQ_OVFL", errno);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&sa), saLen) != 0)
      Fail(env, "bind " + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port), errno);
    struct stat st {};
    if (fstat(fd_, &st) == 0) inode_ = static_cast<double>(st.st_ino);
    wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd_ < 0) Fail(env, "eventfd", errno);
    scratch_.reset(new uint8_t[kBurst * kMaxDatagram]);  // not zeroed: pages are touched only as datagrams land
    msgs_.resize(kBurst);
    iovs_.resize(kBurst);
    names_.resize(kBurst);
    control_.resize(kBurst * CMSG_SPACE(sizeof(uint32_t)));
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    hookAdded_ = true;
  }

  ~UdpReceiver() override {
    Shutdown(true);
    if (hookAdded_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  }

 private:
  [[noreturn]] void Fail(Napi::Env env, const std::string& what, int err) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (wakeFd_ >= 0) ::close(wakeFd_);
    wakeFd_ = -1;
    Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
    e.Value().Set("errno", Napi::Number::New(env, err));
    throw e;
  }

  static void CleanupHook(void* arg) {
    auto* self = static_cast<UdpReceiver*>(arg);
    self->hookAdded_ = false;
    self->Shutdown(true);
  }

  // start(slots: {data, meta}[], flushMs, callback(kind, slot, count, drops, text))
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (fd_ < 0) throw Napi::Error::New(env, "UdpReceiver: socket is closed");
    if (started_) throw Napi::Error::New(env, "UdpReceiver: already started");
    if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsNumber() || !info[2].IsFunction())
      throw Napi::TypeError::New(env, "start(slots: object[], flushMs: number, callback: function)");
    Napi::Array arr = info[0].As<Napi::Array>();
    if (arr.Length() < 1 || arr.Length() > 64) throw Napi::RangeError::New(env, "between 1 and 64 slots");
    slots_.resize(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      if (!v.IsObject()) throw Napi::TypeError::New(env, "slot must be an object");
      Napi::Object s = v.As<Napi::Object>();
      Napi::Value data = s.Get("data");
      Napi::Value meta = s.Get("meta");
      if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
        throw Napi::TypeError::New(env, "slot.data must be a Uint8Array");
      if (!meta.IsTypedArray() || meta.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
        throw Napi::TypeError::New(env, "slot.meta must be an Int32Array");
      auto d = data.As<Napi::Uint8Array>();
      auto m = meta.As<Napi::Int32Array>();
      if (d.ByteLength() < kMaxDatagram)
        throw Napi::RangeError::New(env, "slot.data must hold at least 65536 bytes (one datagram of any size)");
      if (m.ElementLength() < kMetaStride) throw Napi::RangeError::New(env, "slot.meta must hold one datagram");
      slots_[i].data = d.Data();
      slots_[i].dataCap = d.ByteLength();
      slots_[i].meta = m.Data();
      slots_[i].capacity = static_cast<uint32_t>(m.ElementLength() / kMetaStride);
      refs_.push_back(Napi::Persistent(s));
    }
    flushMs_ = std::max(1, info[1].As<Napi::Number>().Int32Value());
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "flowtel-udp-receiver", 0, 1);
    started_ = true;
    thread_ = std::thread([this] { Run(); });
    return env.Undefined();
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "release(slot: number)");
    int32_t i = info[0].As<Napi::Number>().Int32Value();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (i < 0 || static_cast<size_t>(i) >= slots_.size() || slots_[i].state != SlotState::Ready)
        throw Napi::RangeError::New(info.Env(), "release: slot " + std::to_string(i) + " is not held by JS");
      slots_[i].state = SlotState::Free;
    }
    cv_.notify_one();
    return info.Env().Undefined();
  }

  // stats(): { datagrams, bytes, drops, truncated, errors, recvBufferBytes, inode }
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("datagrams", Napi::Number::New(env, static_cast<double>(datagrams_.load())));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_.load())));
    o.Set("drops", Napi::Number::New(env, static_cast<double>(drops_.load())));
    o.Set("truncated", Napi::Number::New(env, static_cast<double>(truncated_.load())));
    o.Set("errors", Napi::Number::New(env, static_cast<double>(errors_.load())));
    int rcv = 0;
    socklen_t len = sizeof rcv;
    if (fd_ < 0 || getsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcv, &len) != 0) rcv = 0;
    o.Set("recvBufferBytes", Napi::Number::New(env, rcv));
    o.Set("inode", Napi::Number::New(env, inode_));
    return o;
  }

  // local(): { address, port } of the bound socket (getsockname); undefined once closed.
  Napi::Value Local(const Napi::CallbackInfo& info) { return flowtel::LocalEndpoint(info.Env(), fd_); }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    Shutdown(false);
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown(true);
    refs_.clear();
    return info.Env().Undefined();
  }

  /** Stops and joins the receiving thread; with closeSocket, closes the socket too. Idempotent. */
  void Shutdown(bool closeSocket) {
    stop_.store(true);
    if (wakeFd_ >= 0) {
      uint64_t one = 1;
      ssize_t n = write(wakeFd_, &one, sizeof one);
      (void)n;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);  // so a waiter cannot miss the notification
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (!closeSocket) return;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (wakeFd_ >= 0) ::close(wakeFd_);
    wakeFd_ = -1;
  }

  void Send(Message* m) {
    if (tsfn_.BlockingCall(m, CallJs) != napi_ok) delete m;
  }

  static void CallJs(Napi::Env env, Napi::Function fn, Message* m) {
    if (env != nullptr && fn != nullptr) {
      try {
        fn.Call({Napi::Number::New(env, m->kind), Napi::Number::New(env, m->slot), Napi::Number::New(env, m->count),
                 Napi::Number::New(env, m->drops), Napi::String::New(env, m->text)});
      } catch (const Napi::Error& e) {
        delete m;
        e.ThrowAsJavaScriptException();
        return;
      }
    }
    delete m;
  }

  /** Waits for a free slot; -1 when stopping. */
  int AcquireSlot() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_.load()) {
      for (size_t i = 0; i < slots_.size(); i++) {
        if (slots_[i].state == SlotState::Free) {
          slots_[i].state = SlotState::Filling;
          return static_cast<int>(i);
        }
      }
      cv_.wait_for(lock, std::chrono::milliseconds(100));
    }
    return -1;
  }

  /** Sleeps until a fd is readable or waitMs passed; clears a wake-up. */
  void Wait(bool forSocket, int waitMs) {
    pollfd fds[2] = {{wakeFd_, POLLIN, 0}, {fd_, POLLIN, 0}};
    int pr = poll(fds, forSocket ? 2 : 1, waitMs);
    if (pr > 0 && (fds[0].revents & POLLIN) != 0 && !stop_.load()) {
      uint64_t v;
      ssize_t n = read(wakeFd_, &v, sizeof v);
      (void)n;
    }
  }

  /** Copies scratch message k into the slot; false when it does not fit (the slot is handed over first). */
  bool CopyInto(Slot& s, unsigned k) {
    const uint32_t len = msgs_[k].msg_len;
    if (s.count >= s.capacity || len > s.dataCap - s.used) return false;
    int32_t* m = s.meta + static_cast<size_t>(s.count) * kMetaStride;
    std::memcpy(s.data + s.used, scratch_.get() + static_cast<size_t>(k) * kMaxDatagram, len);
    m[0] = static_cast<int32_t>(s.used);
    m[1] = static_cast<int32_t>(len);
    const sockaddr_storage& sa = names_[k];
    uint32_t w[4] = {0, 0, 0, 0};
    if (sa.ss_family == AF_INET6) {
      auto* s6 = reinterpret_cast<const sockaddr_in6*>(&sa);
      std::memcpy(w, &s6->sin6_addr, 16);
      m[2] = ntohs(s6->sin6_port);
      m[3] = static_cast<int32_t>(s6->sin6_scope_id);
    } else {
      auto* s4 = reinterpret_cast<const sockaddr_in*>(&sa);
      w[2] = htonl(0xffff);
      w[3] = s4->sin_addr.s_addr;
      m[2] = ntohs(s4->sin_port);
      m[3] = 0;
    }
    for (int i = 0; i < 4; i++) m[4 + i] = static_cast<int32_t>(ntohl(w[i]));
    s.used += len;
    s.count++;
    return true;
  }

  /** Reads the SO_RXQ_OVFL counter (the socket's drops so far) off message k, when the kernel attached it. */
  void NoteDrops(unsigned k) {
    msghdr& h = msgs_[k].msg_hdr;
    for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SO_RXQ_OVFL) continue;
      uint32_t v;
      std::memcpy(&v, CMSG_DATA(c), sizeof v);
      drops_.fetch_add(static_cast<uint32_t>(v - lastOvfl_), std::memory_order_relaxed);  // wraps at 2^32
      lastOvfl_ = v;
    }
  }

  /** Receives up to kBurst datagrams into the scratch area: how many, or -errno. */
  int Receive() {
    const size_t cspace = CMSG_SPACE(sizeof(uint32_t));
    for (unsigned k = 0; k < kBurst; k++) {
      iovs_[k].iov_base = scratch_.get() + static_cast<size_t>(k) * kMaxDatagram;
      iovs_[k].iov_len = kMaxDatagram;
      msghdr& h = msgs_[k].msg_hdr;
      h.msg_name = &names_[k];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &iovs_[k];
      h.msg_iovlen = 1;
      h.msg_control = control_.data() + k * cspace;
      h.msg_controllen = cspace;
      h.msg_flags = 0;
      msgs_[k].msg_len = 0;
    }
    int n = recvmmsg(fd_, msgs_.data(), kBurst, MSG_DONTWAIT, nullptr);
    return n < 0 ? -errno : n;
  }

  void Run() {
    pthread_setname_np(pthread_self(), "flowtel-udp-rx");  // shows in /proc/PID/task/*/comm, top -H
    std::string error;
    unsigned next = 0;  // scratch messages next..got-1 are received but not yet in a slot
    unsigned got = 0;
    while (!stop_.load() && error.empty()) {
      int si = AcquireSlot();
      if (si < 0) break;
      Slot& s = slots_[si];
      s.count = 0;
      s.used = 0;
      Clock::time_point deadline{};
      bool full = false;
      while (!stop_.load()) {
        for (; next < got; next++) {
          if ((msgs_[next].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
            truncated_.fetch_add(1, std::memory_order_relaxed);  // cannot happen with 64 KiB; kept as a guard
            continue;
          }
          if (!CopyInto(s, next)) {
            full = true;
            break;
          }
        }
        if (full || s.count >= s.capacity) break;
        auto now = Clock::now();
        if (s.count > 0 && deadline == Clock::time_point{}) deadline = now + std::chrono::milliseconds(flushMs_);
        if (s.count > 0 && now >= deadline) break;
        int n = Receive();
        if (n > 0) {
          next = 0;
          got = static_cast<unsigned>(n);
          uint64_t b = 0;
          for (unsigned k = 0; k < got; k++) {
            NoteDrops(k);
            b += msgs_[k].msg_len;
          }
          datagrams_.fetch_add(got, std::memory_order_relaxed);
          bytes_.fetch_add(b, std::memory_order_relaxed);
          continue;
        }
        int err = n == 0 ? EAGAIN : -n;
        if (err == EINTR) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) {
          if (s.count > 0) {
            // A batch is open: sleep out its time bound, then take everything that came meanwhile (one
            // wake-up per batch rather than one per datagram).
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
            Wait(false, static_cast<int>(std::max<int64_t>(0, left)));
          } else {
            Wait(true, 1000);
          }
          continue;
        }
        if (err == ENOMEM || err == ENOBUFS) {
          errors_.fetch_add(1, std::memory_order_relaxed);
          Wait(false, 1);
          continue;
        }
        error = std::string("receive failed: ") + strerror(err);
        break;
      }
      bool hand = s.count > 0 && !stop_.load();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        s.state = hand ? SlotState::Ready : SlotState::Free;
      }
      if (hand) Send(new Message{kMsgBatch, si, s.count, static_cast<double>(drops_.load()), ""});
    }
    if (!error.empty()) Send(new Message{kMsgError, -1, 0, static_cast<double>(drops_.load()), error});
    tsfn_.Release();
  }

  Napi::Env env_;
  int family_ = AF_INET;
  int fd_ = -1;
  int wakeFd_ = -1;
  double inode_ = 0;
  int flushMs_ = 2;
  bool started_ = false;
  bool hookAdded_ = false;
  std::unique_ptr<uint8_t[]> scratch_;
  std::vector<mmsghdr> msgs_;
  std::vector<iovec> iovs_;
  std::vector<sockaddr_storage> names_;
  std::vector<uint8_t> control_;
  uint32_t lastOvfl_ = 0;
  std::vector<Slot> slots_;
  std::vector<Napi::ObjectReference> refs_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> datagrams_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> drops_{0};
  std::atomic<uint64_t> truncated_{0};
  std::atomic<uint64_t> errors_{0};
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
};

}  // namespace

Napi::Function UdpReceiverInit(Napi::Env env) { return UdpReceiver::Init(env); }
