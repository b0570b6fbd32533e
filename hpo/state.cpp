#include "state.h"

#include "run_store.h"

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

namespace gradhpo::hpo {

// ---- CRC-32 ---------------------------------------------------------------------------------------

namespace detail {

// Our own table CRC-32 (zlib's polynomial), so that gradhpo::hpo needs only engine and nn, not zlib.
std::uint32_t crc32_of(const void* data, std::size_t bytes) {
  static const std::array<std::uint32_t, 256> table = [] {
    std::array<std::uint32_t, 256> t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
      std::uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  std::uint32_t c = 0xFFFFFFFFu;
  const auto* p = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < bytes; ++i) c = table[(c ^ p[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace detail

// ---- the fields of a record ------------------------------------------------------------------------

namespace {

constexpr char kMagic[8] = {'G', 'H', 'P', 'O', 'S', 'T', 'A', 'T'};
enum class RecordType : std::uint32_t { bilevel = 1, solve = 2, run = 3 };

const char* record_name(std::uint32_t type) {
  switch (type) {
    case static_cast<std::uint32_t>(RecordType::bilevel): return "an online method's state (BilevelState)";
    case static_cast<std::uint32_t>(RecordType::solve): return "an outer loop's state (SolveState)";
    case static_cast<std::uint32_t>(RecordType::run): return "a run store's record (RunRecord)";
  }
  return "an unknown record";
}

class Writer {
 public:
  template <class T> void pod(const T& v) {
    const char* p = reinterpret_cast<const char*>(&v);
    buf.append(p, sizeof(T));
  }
  void str(const std::string& s) {
    pod<std::uint64_t>(s.size());
    buf.append(s);
  }
  void tensor(const Tensor& t) {
    pod<std::uint8_t>(t.defined() ? 1 : 0);
    if (!t.defined()) return;
    pod<std::uint8_t>(static_cast<std::uint8_t>(t.dtype()));
    pod<std::int32_t>(t.ndim());
    for (int i = 0; i < t.ndim(); ++i) pod<std::int64_t>(t.dim(i));
    const Tensor c = t.to(Device::cpu).clone();  // contiguous, in host memory
    buf.append(static_cast<const char*>(c.raw()), c.nbytes());
  }
  template <class T> void vec(const std::vector<T>& v) {
    pod<std::uint64_t>(v.size());
    buf.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  }
  void inner(const InnerState& s) {
    pod<std::uint64_t>(s.parts.size());
    for (const Tensor& t : s.parts) tensor(t);
  }
  void outer(const OuterState& s) {
    vec(s.step);
    vec(s.last_sign);
    vec(s.halvings);
    vec(s.m);
    vec(s.v);
    pod<std::int64_t>(s.t);
  }
  std::string buf;
};

class Reader {
 public:
  Reader(const char* data, std::size_t size, std::string file) : data_(data), size_(size), file_(std::move(file)) {}
  [[noreturn]] void fail(const std::string& what) const { throw Error("state file '" + file_ + "': " + what); }
  void need(std::uint64_t n) const {
    if (n > size_ - pos_) fail("a field runs past the end of the record (at byte " + std::to_string(pos_) + ")");
  }
  template <class T> T pod() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str() {
    const std::uint64_t n = pod<std::uint64_t>();
    need(n);
    std::string s(data_ + pos_, n);
    pos_ += n;
    return s;
  }
  Tensor tensor() {
    if (pod<std::uint8_t>() == 0) return Tensor();
    const std::uint8_t dt = pod<std::uint8_t>();
    if (dt > static_cast<std::uint8_t>(DType::i32)) fail("unknown dtype " + std::to_string(dt));
    const std::int32_t nd = pod<std::int32_t>();
    if (nd < 0 || nd > Shape::kMaxDims) fail("a tensor with " + std::to_string(nd) + " dimensions");
    std::vector<std::int64_t> dims;
    std::uint64_t count = 1;
    for (int i = 0; i < nd; ++i) {
      dims.push_back(pod<std::int64_t>());
      if (dims.back() < 0) fail("a negative tensor extent");
      const auto extent = static_cast<std::uint64_t>(dims.back());
      if (extent != 0 && count > (size_ - pos_) / extent) fail("a tensor larger than the file");
      count *= extent;  // no tensor larger than the file is allocated
    }
    Tensor t = Tensor::empty(Shape(dims), static_cast<DType>(dt));
    need(t.nbytes());
    std::memcpy(t.raw(), data_ + pos_, t.nbytes());
    pos_ += t.nbytes();
    return t;
  }
  template <class T> std::vector<T> vec() {
    const std::uint64_t n = pod<std::uint64_t>();
    need(n);
    need(n * sizeof(T));
    std::vector<T> v(n);
    if (n > 0) std::memcpy(v.data(), data_ + pos_, n * sizeof(T));  // data() may be null when empty
    pos_ += n * sizeof(T);
    return v;
  }
  std::uint64_t count(std::uint64_t most, const char* what) {
    const std::uint64_t n = pod<std::uint64_t>();
    if (n > most) fail(std::to_string(n) + " " + what);
    return n;
  }
  InnerState inner() {
    InnerState s;
    const std::uint64_t parts = count(8, "optimizer-state parts");
    for (std::uint64_t i = 0; i < parts; ++i) s.parts.push_back(tensor());
    return s;
  }
  OuterState outer() {
    OuterState s;
    s.step = vec<double>();
    s.last_sign = vec<int>();
    s.halvings = vec<int>();
    s.m = vec<double>();
    s.v = vec<double>();
    s.t = pod<std::int64_t>();
    return s;
  }
  void done() const {
    if (pos_ != size_) fail(std::to_string(size_ - pos_) + " bytes after the last field");
  }
  std::size_t remaining() const { return size_ - pos_; }

 private:
  const char* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  std::string file_;
};

constexpr std::size_t kHead = sizeof kMagic + 4 + 4 + 8;

std::string record_bytes(RecordType type, std::uint32_t version, const std::string& payload) {
  Writer w;
  w.buf.append(kMagic, sizeof kMagic);
  w.pod<std::uint32_t>(static_cast<std::uint32_t>(type));
  w.pod<std::uint32_t>(version);
  w.pod<std::uint64_t>(payload.size());
  w.buf.append(payload);
  w.pod<std::uint32_t>(detail::crc32_of(w.buf.data(), w.buf.size()));
  return std::move(w.buf);
}

/// The payload of a record of `type` and a version in [oldest, version] (the one read goes to
/// `*read_version` when given), after every check of the container. `path` names the file (or
/// wherever the bytes came from) in messages.
std::string record_payload(RecordType type, std::uint32_t version, const std::string& all, const std::string& path,
                           std::uint32_t oldest = 0, std::uint32_t* read_version = nullptr) {
  if (oldest == 0) oldest = version;
  require(all.size() >= sizeof kMagic && std::memcmp(all.data(), kMagic, sizeof kMagic) == 0,
          "'" + path + "' is not a gradhpo state file (no GHPOSTAT header)");
  require(all.size() >= kHead, "state file '" + path + "' is truncated: " + std::to_string(all.size()) +
                                   " bytes, shorter than its header");
  std::uint32_t got_type, got_version;
  std::uint64_t size;
  std::memcpy(&got_type, all.data() + 8, 4);
  std::memcpy(&got_version, all.data() + 12, 4);
  std::memcpy(&size, all.data() + 16, 8);
  require(got_type == static_cast<std::uint32_t>(type), "state file '" + path + "' holds " + record_name(got_type) +
                                                            ", not " + record_name(static_cast<std::uint32_t>(type)));
  require(got_version >= oldest && got_version <= version,
          "state file '" + path + "' has format version " + std::to_string(got_version) + " of " + record_name(got_type) +
              "; this build reads version " + std::to_string(version) +
              (oldest == version ? "" : " (and from version " + std::to_string(oldest) + ")"));
  if (read_version) *read_version = got_version;
  const std::size_t body = all.size() - kHead;
  require(body >= 4 && size <= body - 4, "state file '" + path + "' is truncated: " +
                                             std::to_string(body < 4 ? 0 : body - 4) + " of " + std::to_string(size) +
                                             " payload bytes and the checksum");
  require(size == body - 4, "state file '" + path + "' has " + std::to_string(body - 4 - size) +
                                " bytes after its checksum");
  std::uint32_t crc;
  std::memcpy(&crc, all.data() + kHead + size, 4);
  require(detail::crc32_of(all.data(), kHead + size) == crc, "state file '" + path + "' is corrupt (checksum mismatch)");
  return all.substr(kHead, size);
}


}  // namespace

// ---- BilevelState -------------------------------------------------------------------------------

void save_state(const BilevelState& s, const std::string& path) { commit_file(path, bilevel_state_bytes(s)); }

std::string bilevel_state_bytes(const BilevelState& s) {
  Writer w;
  w.str(s.method);
  w.pod<std::int64_t>(s.step);
  w.pod<std::uint64_t>(s.rng);
  w.tensor(s.theta);
  w.inner(s.inner);
  w.outer(s.outer);
  w.pod<std::uint64_t>(s.extra.size());
  for (const auto& [k, t] : s.extra) {
    w.str(k);
    w.tensor(t);
  }
  w.vec(s.train_losses);
  w.vec(s.val_losses);
  return record_bytes(RecordType::bilevel, kBilevelStateVersion, w.buf);
}

BilevelState load_state(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  require(static_cast<bool>(f), "cannot open state file '" + path + "'");
  return bilevel_state_from_bytes(std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()), path);
}

BilevelState bilevel_state_from_bytes(const std::string& bytes, const std::string& path) {
  const std::string payload = record_payload(RecordType::bilevel, kBilevelStateVersion, bytes, path);
  Reader r(payload.data(), payload.size(), path);
  BilevelState s;
  s.method = r.str();
  s.step = r.pod<std::int64_t>();
  s.rng = r.pod<std::uint64_t>();
  s.theta = r.tensor();
  s.inner = r.inner();
  s.outer = r.outer();
  const std::uint64_t extras = r.count(r.remaining(), "method tensors");
  for (std::uint64_t i = 0; i < extras; ++i) {
    std::string k = r.str();
    s.extra[k] = r.tensor();
  }
  s.train_losses = r.vec<double>();
  s.val_losses = r.vec<double>();
  r.done();
  return s;
}

// ---- SolveState ----------------------------------------------------------------------------------

namespace {

void write_cost(Writer& w, const Cost& c) {
  w.pod<double>(c.seconds);
  w.pod<std::int64_t>(c.gradient_evals);
  w.pod<std::int64_t>(c.fwd_over_rev_passes);
  w.pod<std::int64_t>(c.directions);
  w.pod<std::int64_t>(c.step_passes);
  for (std::size_t b : {c.trajectory_bytes, c.info_buffer_bytes, c.checkpoint_bytes, c.tangent_bytes, c.peak_bytes})
    w.pod<std::uint64_t>(b);
  w.pod<double>(c.info_bits_per_parameter_step);
}

Cost read_cost(Reader& r) {
  Cost c;
  c.seconds = r.pod<double>();
  c.gradient_evals = r.pod<std::int64_t>();
  c.fwd_over_rev_passes = r.pod<std::int64_t>();
  c.directions = r.pod<std::int64_t>();
  c.step_passes = r.pod<std::int64_t>();
  for (std::size_t* b : {&c.trajectory_bytes, &c.info_buffer_bytes, &c.checkpoint_bytes, &c.tangent_bytes, &c.peak_bytes})
    *b = static_cast<std::size_t>(r.pod<std::uint64_t>());
  c.info_bits_per_parameter_step = r.pod<double>();
  return c;
}

void write_failure(Writer& w, const FailedTrial& f) {
  w.str(f.method);
  w.pod<std::int64_t>(f.trial);
  w.pod<std::int64_t>(f.inner_step);
  w.pod<double>(f.value);
  w.pod<std::uint64_t>(f.hyperparameters.size());
  for (const auto& [name, value] : f.hyperparameters) {
    w.str(name);
    w.pod<double>(value);
  }
  w.str(f.reason);
}

FailedTrial read_failure(Reader& r) {
  FailedTrial f;
  f.method = r.str();
  f.trial = r.pod<std::int64_t>();
  f.inner_step = r.pod<std::int64_t>();
  f.value = r.pod<double>();
  const std::uint64_t n = r.count(r.remaining(), "hyperparameters");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string name = r.str();
    f.hyperparameters.emplace_back(std::move(name), r.pod<double>());
  }
  f.reason = r.str();
  return f;
}

void write_row(Writer& w, const SolveRow& row) {
  w.pod<std::int32_t>(row.step);
  w.pod<std::int64_t>(row.first_inner);
  w.vec(row.theta);
  w.vec(row.hypergradient);
  w.pod<double>(row.val_loss);
  w.pod<double>(row.train_loss);
  w.pod<double>(row.hypergradient_norm);
  write_cost(w, row.cost);
  w.pod<std::uint8_t>(row.rejected ? 1 : 0);
  write_failure(w, row.failure);
  w.pod<std::int32_t>(row.pass);
  w.pod<std::uint8_t>(row.pass_end ? 1 : 0);
  w.pod<std::uint64_t>(row.metrics.size());
  for (const auto& [name, value] : row.metrics) {
    w.str(name);
    w.pod<double>(value);
  }
  w.vec(row.clipped);  // version 2
}

SolveRow read_row(Reader& r, std::uint32_t version) {
  SolveRow row;
  row.step = r.pod<std::int32_t>();
  row.first_inner = r.pod<std::int64_t>();
  row.theta = r.vec<double>();
  row.hypergradient = r.vec<double>();
  row.val_loss = r.pod<double>();
  row.train_loss = r.pod<double>();
  row.hypergradient_norm = r.pod<double>();
  row.cost = read_cost(r);
  row.rejected = r.pod<std::uint8_t>() != 0;
  row.failure = read_failure(r);
  row.pass = r.pod<std::int32_t>();
  row.pass_end = r.pod<std::uint8_t>() != 0;
  const std::uint64_t n = r.count(r.remaining(), "metrics");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string name = r.str();
    row.metrics[name] = r.pod<double>();
  }
  if (version >= 2) row.clipped = r.vec<std::int64_t>();
  return row;
}

}  // namespace

std::string solve_state_bytes(const SolveState& s) {
  Writer w;
  w.str(s.method);
  w.str(s.options_json);
  w.tensor(s.theta);
  w.tensor(s.previous_theta);
  w.outer(s.outer);
  w.pod<std::int32_t>(s.next_step);
  w.pod<std::int32_t>(s.rejections);
  w.pod<std::int32_t>(s.pass);
  w.pod<std::int64_t>(s.first_inner);
  w.inner(s.start);
  w.pod<std::uint64_t>(s.rows.size());
  for (const SolveRow& row : s.rows) write_row(w, row);
  w.str(s.stop_reason);
  return record_bytes(RecordType::solve, SolveState::kVersion, w.buf);
}

SolveState solve_state_from_bytes(const std::string& bytes, const std::string& where) {
  std::uint32_t version = 0;
  const std::string payload = record_payload(RecordType::solve, SolveState::kVersion, bytes, where, 1, &version);
  Reader r(payload.data(), payload.size(), where);
  SolveState s;
  s.method = r.str();
  s.options_json = r.str();
  s.theta = r.tensor();
  s.previous_theta = r.tensor();
  s.outer = r.outer();
  s.next_step = r.pod<std::int32_t>();
  s.rejections = r.pod<std::int32_t>();
  s.pass = r.pod<std::int32_t>();
  s.first_inner = r.pod<std::int64_t>();
  s.start = r.inner();
  const std::uint64_t rows = r.count(r.remaining(), "rows");
  for (std::uint64_t i = 0; i < rows; ++i) s.rows.push_back(read_row(r, version));
  if (version >= 3) s.stop_reason = r.str();
  r.done();
  return s;
}

void save_state(const SolveState& s, const std::string& path) { commit_file(path, solve_state_bytes(s)); }

SolveState load_solve_state(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  require(static_cast<bool>(f), "cannot open state file '" + path + "'");
  return solve_state_from_bytes(std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()), path);
}

// ---- RunRecord ------------------------------------------------------------------------------------

std::string run_record_bytes(const RunRecord& record) {
  Writer w;
  w.str(record.command);
  w.str(record.config_json);
  w.pod<std::uint64_t>(record.sections.size());
  for (const auto& [name, bytes] : record.sections) {
    w.str(name);
    w.str(bytes);
  }
  return record_bytes(RecordType::run, RunRecord::kVersion, w.buf);
}

RunRecord run_record_from_bytes(const std::string& bytes, const std::string& where) {
  const std::string payload = record_payload(RecordType::run, RunRecord::kVersion, bytes, where);
  Reader r(payload.data(), payload.size(), where);
  RunRecord record;
  record.command = r.str();
  record.config_json = r.str();
  const std::uint64_t n = r.count(r.remaining(), "sections");
  for (std::uint64_t i = 0; i < n; ++i) {
    std::string name = r.str();
    record.sections[name] = r.str();
  }
  r.done();
  return record;
}

}  // namespace gradhpo::hpo
