// flowtel's live capture addon: libpcap handles whose packets reach JavaScript in batches.
//
// One `Capture` per interface. Activation (pcap_create, options, pcap_activate, BPF filter) happens in the
// constructor on the JS thread and throws a JS Error naming the interface. `start()` hands over a few
// "slots": JS-owned typed arrays (packet bytes, offset, caplen, origlen, timestamp in µs) that the
// capture thread fills with pcap_dispatch. A slot goes to JS (through one ThreadSafeFunction call per
// batch, never per packet) when it is full or `flushMs` after its first packet, so low-rate traffic
// still flows. JS gives the slot back with `release()`. When JS is slow every slot is in its hands and
// the thread waits: the kernel ring absorbs the burst and what it cannot hold is counted as kernel
// drops (pcap_stats ps_drop). `close()` stops the thread (an eventfd wakes its poll), joins it and closes
// the handle; it is also done when the environment is torn down or the object is collected. `drain()` ends
// the capture without losing what the kernel already holds: the thread keeps reading until the kernel has
// retired its current block (the pcap timeout, twice, plus a margin) and a read finds nothing, hands over the
// batch it was filling, and ends with an `end` message; the handle stays open (stats readable) until close().
// The addon also carries the exporter's sendmmsg UDP socket (udp_socket.cc) and the collector's recvmmsg
// receiver (udp_receiver.cc), so one native build serves all three.
#include <napi.h>
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

Napi::Function UdpSocketInit(Napi::Env env);    // udp_socket.cc
Napi::Function UdpReceiverInit(Napi::Env env);  // udp_receiver.cc

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMsgBatch = 0;
constexpr int kMsgError = 1;
constexpr int kMsgEnd = 2;

struct Message {
  int kind;
  int slot;
  uint32_t count;
  std::string text;
};

enum class SlotState { Free, Filling, Ready };

struct Slot {
  uint8_t* data = nullptr;
  size_t dataCap = 0;
  int32_t* offset = nullptr;
  int32_t* caplen = nullptr;
  int32_t* origlen = nullptr;
  double* tsUs = nullptr;
  uint32_t capacity = 0;
  uint32_t count = 0;
  size_t used = 0;
  SlotState state = SlotState::Free;
};

/** 64-bit totals of libpcap's 32-bit counters (which wrap), accumulated from deltas. */
struct KernelStats {
  uint64_t recv = 0;
  uint64_t drop = 0;
  uint64_t ifdrop = 0;
  uint32_t lastRecv = 0;
  uint32_t lastDrop = 0;
  uint32_t lastIfdrop = 0;
  bool valid = false;
};

std::string ActivateError(const std::string& dev, int status, pcap_t* p) {
  std::string detail = pcap_geterr(p);
  std::string what;
  switch (status) {
    case PCAP_ERROR_NO_SUCH_DEVICE:
      what = "no such interface";
      break;
    case PCAP_ERROR_PERM_DENIED:
      what = "permission denied (live capture needs CAP_NET_RAW and CAP_NET_ADMIN, or root)";
      break;
    case PCAP_ERROR_IFACE_NOT_UP:
      what = "interface is not up";
      break;
    case PCAP_ERROR_PROMISC_PERM_DENIED:
      what = "permission denied for promiscuous mode";
      break;
    default:
      what = pcap_statustostr(status);
  }
  if (!detail.empty() && detail != what) what += " (" + detail + ")";
  return "interface \"" + dev + "\": " + what;
}

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Capture",
                       {
                           InstanceMethod<&Capture::Start>("start"),
                           InstanceMethod<&Capture::Release>("release"),
                           InstanceMethod<&Capture::Drain>("drain"),
                           InstanceMethod<&Capture::Stats>("stats"),
                           InstanceMethod<&Capture::Close>("close"),
                           InstanceAccessor<&Capture::LinkType>("linkType"),
                           InstanceAccessor<&Capture::Snaplen>("snaplen"),
                           InstanceAccessor<&Capture::Nanosecond>("nanosecond"),
                       });
  }

  // new Capture(device, { snaplen, promiscuous, bufferBytes, timeoutMs, immediate, filter })
  explicit Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info), env_(info.Env()) {
    Napi::Env env = info.Env();
    if (info.Length() < 2 || !info[0].IsString() || !info[1].IsObject())
      throw Napi::TypeError::New(env, "Capture(device: string, options: object)");
    device_ = info[0].As<Napi::String>().Utf8Value();
    Napi::Object o = info[1].As<Napi::Object>();
    int snaplen = IntOption(o, "snaplen", 262144);
    bool promisc = BoolOption(o, "promiscuous", true);
    int bufferBytes = IntOption(o, "bufferBytes", 4 * 1024 * 1024);
    int timeoutMs = IntOption(o, "timeoutMs", 10);
    timeoutMs_ = std::max(1, timeoutMs);
    bool immediate = BoolOption(o, "immediate", false);
    std::string filter;
    if (o.Has("filter") && !o.Get("filter").IsUndefined()) {
      if (!o.Get("filter").IsString()) throw Napi::TypeError::New(env, "filter must be a string");
      filter = o.Get("filter").As<Napi::String>().Utf8Value();
    }
    if (device_.empty() || device_.size() >= IF_NAMESIZE)
      throw Napi::Error::New(env, "interface \"" + device_ + "\": not a valid interface name");

    char errbuf[PCAP_ERRBUF_SIZE] = {0};
    pcap_t* p = pcap_create(device_.c_str(), errbuf);
    if (p == nullptr) throw Napi::Error::New(env, "interface \"" + device_ + "\": " + errbuf);
    pcap_set_snaplen(p, snaplen);
    pcap_set_promisc(p, promisc ? 1 : 0);
    pcap_set_timeout(p, timeoutMs);
    if (bufferBytes > 0) pcap_set_buffer_size(p, bufferBytes);
    if (immediate) pcap_set_immediate_mode(p, 1);
    nano_ = pcap_set_tstamp_precision(p, PCAP_TSTAMP_PRECISION_NANO) == 0;
    int status = pcap_activate(p);
    if (status < 0) {
      std::string msg = ActivateError(device_, status, p);
      pcap_close(p);
      throw Napi::Error::New(env, msg);
    }
    // A warning (status > 0) such as "promiscuous mode not supported" leaves a working handle.
    nano_ = nano_ && pcap_get_tstamp_precision(p) == PCAP_TSTAMP_PRECISION_NANO;
    if (!filter.empty()) {
      bpf_program prog;
      if (pcap_compile(p, &prog, filter.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0) {
        std::string msg = "interface \"" + device_ + "\": bad capture filter \"" + filter + "\": " + pcap_geterr(p);
        pcap_close(p);
        throw Napi::Error::New(env, msg);
      }
      int rc = pcap_setfilter(p, &prog);
      pcap_freecode(&prog);
      if (rc != 0) {
        std::string msg =
            "interface \"" + device_ + "\": cannot set capture filter \"" + filter + "\": " + pcap_geterr(p);
        pcap_close(p);
        throw Napi::Error::New(env, msg);
      }
    }
    // Non-blocking reads and our own poll(): with TPACKET_V3 a blocking read would wait for the next
    // packet however long that takes, and a batch with packets must be handed over within flushMs.
    if (pcap_setnonblock(p, 1, errbuf) != 0 || pcap_get_selectable_fd(p) < 0) {
      std::string msg = "interface \"" + device_ + "\": cannot make the capture non-blocking: " + errbuf;
      pcap_close(p);
      throw Napi::Error::New(env, msg);
    }
    wakeFd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakeFd_ < 0) {
      pcap_close(p);
      throw Napi::Error::New(env, "interface \"" + device_ + "\": eventfd failed");
    }
    pcap_ = p;
    linkType_ = pcap_datalink(p);
    snaplen_ = pcap_snapshot(p);
    napi_add_env_cleanup_hook(env, CleanupHook, this);
    hookAdded_ = true;
  }

  ~Capture() override {
    Shutdown();
    if (hookAdded_) napi_remove_env_cleanup_hook(env_, CleanupHook, this);
  }

 private:
  static void CleanupHook(void* arg) {
    auto* self = static_cast<Capture*>(arg);
    self->hookAdded_ = false;
    self->Shutdown();
  }

  static int IntOption(const Napi::Object& o, const char* key, int dflt) {
    if (!o.Has(key)) return dflt;
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return dflt;
    if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), std::string(key) + " must be a number");
    return v.As<Napi::Number>().Int32Value();
  }

  static bool BoolOption(const Napi::Object& o, const char* key, bool dflt) {
    if (!o.Has(key)) return dflt;
    Napi::Value v = o.Get(key);
    if (v.IsUndefined()) return dflt;
    return v.ToBoolean().Value();
  }

  Napi::Value LinkType(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), linkType_); }
  Napi::Value Snaplen(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), snaplen_); }
  Napi::Value Nanosecond(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), nano_); }

  // start(slots: {data, offset, caplen, origlen, tsUs}[], flushMs, callback(kind, slot, count, text))
  Napi::Value Start(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (pcap_ == nullptr) throw Napi::Error::New(env, "interface \"" + device_ + "\": capture is closed");
    if (started_) throw Napi::Error::New(env, "interface \"" + device_ + "\": capture already started");
    if (info.Length() < 3 || !info[0].IsArray() || !info[1].IsNumber() || !info[2].IsFunction())
      throw Napi::TypeError::New(env, "start(slots: object[], flushMs: number, callback: function)");
    Napi::Array arr = info[0].As<Napi::Array>();
    if (arr.Length() < 1 || arr.Length() > 64) throw Napi::RangeError::New(env, "between 1 and 64 slots");
    slots_.resize(arr.Length());
    for (uint32_t i = 0; i < arr.Length(); i++) {
      Napi::Value v = arr.Get(i);
      if (!v.IsObject()) throw Napi::TypeError::New(env, "slot must be an object");
      Napi::Object s = v.As<Napi::Object>();
      Slot& slot = slots_[i];
      auto data = TypedArrayField<Napi::Uint8Array>(s, "data", napi_uint8_array);
      auto offset = TypedArrayField<Napi::Int32Array>(s, "offset", napi_int32_array);
      auto caplen = TypedArrayField<Napi::Int32Array>(s, "caplen", napi_int32_array);
      auto origlen = TypedArrayField<Napi::Int32Array>(s, "origlen", napi_int32_array);
      auto tsUs = TypedArrayField<Napi::Float64Array>(s, "tsUs", napi_float64_array);
      size_t cap = offset.ElementLength();
      if (cap < 1 || caplen.ElementLength() < cap || origlen.ElementLength() < cap || tsUs.ElementLength() < cap)
        throw Napi::RangeError::New(env, "slot arrays must have the same non-zero length");
      if (data.ByteLength() < static_cast<size_t>(snaplen_))
        throw Napi::RangeError::New(env, "slot data must hold at least one packet of snaplen bytes");
      slot.data = data.Data();
      slot.dataCap = data.ByteLength();
      slot.offset = offset.Data();
      slot.caplen = caplen.Data();
      slot.origlen = origlen.Data();
      slot.tsUs = tsUs.Data();
      slot.capacity = static_cast<uint32_t>(cap);
      refs_.push_back(Napi::Persistent(s));
    }
    flushMs_ = std::max(1, info[1].As<Napi::Number>().Int32Value());
    tsfn_ = Napi::ThreadSafeFunction::New(env, info[2].As<Napi::Function>(), "flowtel-pcap", 0, 1);
    started_ = true;
    threadRunning_.store(true);  // before the thread exists, so stats() never races its pcap_dispatch
    thread_ = std::thread([this] { Run(); });
    return env.Undefined();
  }

  template <typename T>
  static T TypedArrayField(const Napi::Object& s, const char* key, napi_typedarray_type type) {
    Napi::Value v = s.Get(key);
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type)
      throw Napi::TypeError::New(s.Env(), std::string("slot.") + key + " has the wrong type");
    return v.As<T>();
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

  // stats(): { received, kernelDrops, ifDrops, packets, bytes } (kernel figures since the handle opened)
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (pcap_ != nullptr && !threadRunning_.load()) RefreshStats();
    KernelStats ks;
    {
      std::lock_guard<std::mutex> lock(statsMutex_);
      ks = kstats_;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("received", Napi::Number::New(env, static_cast<double>(ks.recv)));
    o.Set("kernelDrops", Napi::Number::New(env, static_cast<double>(ks.drop)));
    o.Set("ifDrops", Napi::Number::New(env, static_cast<double>(ks.ifdrop)));
    o.Set("packets", Napi::Number::New(env, static_cast<double>(packets_.load())));
    o.Set("bytes", Napi::Number::New(env, static_cast<double>(bytes_.load())));
    o.Set("overflow", Napi::Number::New(env, static_cast<double>(overflow_.load())));
    return o;
  }

  // drain(): finish what the kernel holds now, hand it over, then end (see the file comment). Idempotent.
  Napi::Value Drain(const Napi::CallbackInfo& info) {
    if (pcap_ != nullptr && started_ && !drain_.load()) {
      auto until = Clock::now() + std::chrono::milliseconds(2 * timeoutMs_ + 20);
      drainUntilNs_.store(std::chrono::duration_cast<std::chrono::nanoseconds>(until.time_since_epoch()).count());
      drain_.store(true);
      WakeThread();
    }
    return info.Env().Undefined();
  }

  void WakeThread() {
    if (wakeFd_ >= 0) {
      uint64_t one = 1;
      ssize_t n = write(wakeFd_, &one, sizeof one);
      (void)n;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);  // so a waiter cannot miss the notification
    }
    cv_.notify_all();
  }

  /** True once a drain was asked for and its time is up. */
  bool DrainDue(Clock::time_point now) const {
    if (!drain_.load()) return false;
    return std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count() >=
           drainUntilNs_.load();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Shutdown();
    refs_.clear();
    return info.Env().Undefined();
  }

  /** Stops and joins the capture thread and closes the handle; safe to call more than once. */
  void Shutdown() {
    stop_.store(true);
    WakeThread();
    if (thread_.joinable()) thread_.join();
    if (pcap_ != nullptr) {
      RefreshStats();
      pcap_close(pcap_);
      pcap_ = nullptr;
    }
    if (wakeFd_ >= 0) {
      close(wakeFd_);
      wakeFd_ = -1;
    }
  }

  void RefreshStats() {
    pcap_stat ps;
    if (pcap_ == nullptr || pcap_stats(pcap_, &ps) != 0) return;
    std::lock_guard<std::mutex> lock(statsMutex_);
    KernelStats& k = kstats_;
    if (k.valid) {
      k.recv += static_cast<uint32_t>(ps.ps_recv - k.lastRecv);
      k.drop += static_cast<uint32_t>(ps.ps_drop - k.lastDrop);
      k.ifdrop += static_cast<uint32_t>(ps.ps_ifdrop - k.lastIfdrop);
    } else {
      k.recv = ps.ps_recv;
      k.drop = ps.ps_drop;
      k.ifdrop = ps.ps_ifdrop;
      k.valid = true;
    }
    k.lastRecv = ps.ps_recv;
    k.lastDrop = ps.ps_drop;
    k.lastIfdrop = ps.ps_ifdrop;
  }

  static void OnPacket(u_char* user, const pcap_pkthdr* h, const u_char* bytes) {
    auto* self = reinterpret_cast<Capture*>(user);
    Slot& s = self->slots_[self->filling_];
    uint32_t caplen = h->caplen;
    if (s.count >= s.capacity || caplen > s.dataCap - s.used) {
      self->overflow_++;  // cannot happen with the dispatch counts chosen in Run(); kept as a guard
      return;
    }
    uint32_t i = s.count++;
    std::memcpy(s.data + s.used, bytes, caplen);
    s.offset[i] = static_cast<int32_t>(s.used);
    s.caplen[i] = static_cast<int32_t>(caplen);
    s.origlen[i] = static_cast<int32_t>(h->len);
    double frac = self->nano_ ? static_cast<double>(h->ts.tv_usec / 1000) : static_cast<double>(h->ts.tv_usec);
    s.tsUs[i] = static_cast<double>(h->ts.tv_sec) * 1e6 + frac;
    s.used += caplen;
    self->packets_.fetch_add(1, std::memory_order_relaxed);
    self->bytes_.fetch_add(caplen, std::memory_order_relaxed);
  }

  void Send(Message* m) {
    if (tsfn_.BlockingCall(m, CallJs) != napi_ok) delete m;
  }

  static void CallJs(Napi::Env env, Napi::Function fn, Message* m) {
    if (env != nullptr && fn != nullptr) {
      try {
        fn.Call({Napi::Number::New(env, m->kind), Napi::Number::New(env, m->slot), Napi::Number::New(env, m->count),
                 Napi::String::New(env, m->text)});
      } catch (const Napi::Error& e) {
        delete m;
        e.ThrowAsJavaScriptException();
        return;
      }
    }
    delete m;
  }

  /** Waits for a free slot (refreshing the stats while waiting); -1 when stopping. */
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
      lock.unlock();
      MaybeRefreshStats();
      lock.lock();
    }
    return -1;
  }

  void MaybeRefreshStats() {
    auto now = Clock::now();
    if (now - lastStats_ < std::chrono::milliseconds(100)) return;
    lastStats_ = now;
    RefreshStats();
  }

  void Run() {
    std::string error;
    const size_t snap = static_cast<size_t>(snaplen_);
    bool drained = false;
    while (!stop_.load() && error.empty() && !drained) {
      int si = AcquireSlot();
      if (si < 0) break;
      filling_ = si;
      Slot& s = slots_[si];
      s.count = 0;
      s.used = 0;
      Clock::time_point deadline{};
      const int fd = pcap_get_selectable_fd(pcap_);
      while (!stop_.load()) {
        // Never ask for more packets than certainly fit: a packet is at most snaplen bytes.
        size_t byBytes = (s.dataCap - s.used) / snap;
        size_t room = std::min<size_t>(s.capacity - s.count, byBytes);
        if (room == 0) break;
        int rc = pcap_dispatch(pcap_, static_cast<int>(std::min<size_t>(room, 1 << 20)), OnPacket,
                               reinterpret_cast<u_char*>(this));
        if (rc < 0) {
          if (rc == PCAP_ERROR_BREAK) continue;
          error = "interface \"" + device_ + "\": capture failed: " + pcap_geterr(pcap_);
          break;
        }
        MaybeRefreshStats();
        auto now = Clock::now();
        if (s.count > 0 && deadline == Clock::time_point{}) deadline = now + std::chrono::milliseconds(flushMs_);
        if (s.count > 0 && now >= deadline) break;
        if (rc > 0) continue;  // there may be more right away
        if (DrainDue(now)) {
          drained = true;  // the kernel's blocks are retired and read: nothing is left behind
          break;
        }
        // Nothing ready: sleep until packets come, the batch is due, a stats refresh, drain() or close().
        int waitMs = 100;
        if (s.count > 0) {
          auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
          waitMs = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(left, waitMs)));
        }
        if (drain_.load()) waitMs = std::min(waitMs, 5);
        pollfd fds[2] = {{fd, POLLIN, 0}, {wakeFd_, POLLIN, 0}};
        int pr = poll(fds, 2, waitMs);
        if (pr > 0 && (fds[1].revents & POLLIN) != 0 && !stop_.load()) {
          uint64_t v;
          ssize_t n = read(wakeFd_, &v, sizeof v);  // a drain() wake-up: clear it (close() needs no clearing)
          (void)n;
        }
        if (pr > 0 && (fds[0].revents & (POLLERR | POLLNVAL)) != 0) {
          // Let pcap_dispatch report what went wrong (e.g. the interface went away).
          int rc2 = pcap_dispatch(pcap_, 1, OnPacket, reinterpret_cast<u_char*>(this));
          if (rc2 < 0 && rc2 != PCAP_ERROR_BREAK) {
            error = "interface \"" + device_ + "\": capture failed: " + pcap_geterr(pcap_);
            break;
          }
        }
      }
      bool hand = s.count > 0 && !stop_.load();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        s.state = hand ? SlotState::Ready : SlotState::Free;
      }
      if (hand) Send(new Message{kMsgBatch, si, s.count, ""});
    }
    RefreshStats();
    if (!error.empty()) Send(new Message{kMsgError, -1, 0, error});
    else if (!stop_.load()) Send(new Message{kMsgEnd, -1, 0, ""});
    threadRunning_.store(false);
    tsfn_.Release();
  }

  Napi::Env env_;
  std::string device_;
  pcap_t* pcap_ = nullptr;
  int linkType_ = 0;
  int snaplen_ = 0;
  bool nano_ = false;
  int flushMs_ = 20;
  int timeoutMs_ = 10;
  std::atomic<bool> drain_{false};
  std::atomic<int64_t> drainUntilNs_{0};
  int wakeFd_ = -1;
  bool started_ = false;
  bool hookAdded_ = false;
  std::vector<Slot> slots_;
  std::vector<Napi::ObjectReference> refs_;
  int filling_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> threadRunning_{false};
  std::atomic<uint64_t> packets_{0};
  std::atomic<uint64_t> bytes_{0};
  std::atomic<uint64_t> overflow_{0};
  std::mutex statsMutex_;
  KernelStats kstats_;
  Clock::time_point lastStats_{};
  std::thread thread_;
  Napi::ThreadSafeFunction tsfn_;
};

// checkFilter(expression, linkType, snaplen): null when it compiles, else libpcap's message.
Napi::Value CheckFilter(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "checkFilter(expression: string)");
  std::string expr = info[0].As<Napi::String>().Utf8Value();
  int linkType = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : DLT_EN10MB;
  int snaplen = info.Length() > 2 && info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : 262144;
  pcap_t* p = pcap_open_dead(linkType, snaplen);
  if (p == nullptr) throw Napi::Error::New(env, "pcap_open_dead failed");
  bpf_program prog;
  Napi::Value result = env.Null();
  if (pcap_compile(p, &prog, expr.c_str(), 1, PCAP_NETMASK_UNKNOWN) != 0)
    result = Napi::String::New(env, pcap_geterr(p));
  else
    pcap_freecode(&prog);
  pcap_close(p);
  return result;
}

// nameToIndex(name): the OS interface index in this process's network namespace, 0 when unknown.
Napi::Value NameToIndex(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(info.Env(), "nameToIndex(name: string)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::Number::New(info.Env(), if_nametoindex(name.c_str()));
}

int PrefixLength(const sockaddr* mask) {
  if (mask == nullptr) return -1;
  const uint8_t* b = nullptr;
  size_t n = 0;
  if (mask->sa_family == AF_INET) {
    b = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in*>(mask)->sin_addr);
    n = 4;
  } else if (mask->sa_family == AF_INET6) {
    b = reinterpret_cast<const uint8_t*>(&reinterpret_cast<const sockaddr_in6*>(mask)->sin6_addr);
    n = 16;
  } else {
    return -1;
  }
  int bits = 0;
  for (size_t i = 0; i < n; i++) bits += __builtin_popcount(b[i]);
  return bits;
}

// interfaceAddresses(): getifaddrs() as [{ name, flags, family: 0 | 4 | 6, address, prefixLength, scopeId }],
// unfiltered (os.networkInterfaces() leaves out interfaces that are not up and running). family 0 is an
// interface's link entry (no IP address).
Napi::Value InterfaceAddresses(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) throw Napi::Error::New(env, std::string("getifaddrs failed: ") + strerror(errno));
  Napi::Array out = Napi::Array::New(env);
  uint32_t n = 0;
  for (ifaddrs* a = list; a != nullptr; a = a->ifa_next) {
    if (a->ifa_name == nullptr) continue;
    Napi::Object o = Napi::Object::New(env);
    o.Set("name", a->ifa_name);
    o.Set("flags", Napi::Number::New(env, a->ifa_flags));
    char text[INET6_ADDRSTRLEN] = {0};
    int family = 0;
    uint32_t scope = 0;
    if (a->ifa_addr != nullptr && a->ifa_addr->sa_family == AF_INET) {
      family = 4;
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof text);
    } else if (a->ifa_addr != nullptr && a->ifa_addr->sa_family == AF_INET6) {
      family = 6;
      auto* sin6 = reinterpret_cast<sockaddr_in6*>(a->ifa_addr);
      inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
      scope = sin6->sin6_scope_id;
    }
    o.Set("family", Napi::Number::New(env, family));
    o.Set("address", Napi::String::New(env, text));
    o.Set("prefixLength", Napi::Number::New(env, family == 0 ? -1 : PrefixLength(a->ifa_netmask)));
    o.Set("scopeId", Napi::Number::New(env, scope));
    out.Set(n++, o);
  }
  freeifaddrs(list);
  return out;
}

Napi::Value LibVersion(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), pcap_lib_version()); }

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  // pcap_init is 1.10+; it makes libpcap's error strings UTF-8 and its setup thread-safe.
#ifdef PCAP_CHAR_ENC_UTF_8
  char errbuf[PCAP_ERRBUF_SIZE];
  pcap_init(PCAP_CHAR_ENC_UTF_8, errbuf);
#endif
  exports.Set("Capture", Capture::Init(env));
  exports.Set("checkFilter", Napi::Function::New(env, CheckFilter));
  exports.Set("nameToIndex", Napi::Function::New(env, NameToIndex));
  exports.Set("interfaceAddresses", Napi::Function::New(env, InterfaceAddresses));
  exports.Set("libVersion", Napi::Function::New(env, LibVersion));
  exports.Set("UdpSocket", UdpSocketInit(env));
  exports.Set("UdpReceiver", UdpReceiverInit(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(flowtel_pcap, InitModule)
