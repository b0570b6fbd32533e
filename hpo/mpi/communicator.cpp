#include "communicator.h"

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <limits>
#include <vector>

#include "../../engine/error.h"

namespace gradhpo::mpi {

namespace {

std::string error_text(int rc) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) return "MPI error code " + std::to_string(rc);
  return std::string(text, static_cast<std::size_t>(length));
}

int as_count(std::size_t n, const char* what) {
  require(n <= static_cast<std::size_t>(std::numeric_limits<int>::max()),
          std::string("mpi: ") + what + " of " + std::to_string(n) + " bytes exceeds MPI's int count");
  return static_cast<int>(n);
}

// The sum in rank order without a root: the values are cut into N chunks and rank r owns chunk
// r. Every rank sends each owner its piece (MPI_Alltoallv), the owner adds the N pieces in the
// order 0, 1, ..., N-1 — for every element the same additions, in the same order, as one rank
// adding all N vectors would make, so the bits do not depend on how the chunks are cut — and the
// sums are gathered back to every rank (MPI_Allgatherv). Each rank sends and receives
// 2(N-1)/N·n values, as a ring allreduce does, where gathering to rank 0 put (N-1)·n values
// through rank 0's link (tools/doc/scaling.md).
template <class T>
void sum_in_rank_order_of(const Communicator& c, T* values, std::int64_t n, MPI_Datatype type,
                          const std::function<void(int, const char*)>& check, MPI_Comm comm) {
  require(n >= 0, "mpi: sum_in_rank_order of " + std::to_string(n) + " values");
  const int size = c.size();
  if (size == 1 || n == 0) return;
  as_count(static_cast<std::size_t>(n), "a sum");
  std::vector<int> counts(static_cast<std::size_t>(size)), starts(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) {  // chunk r: [r·n/N, (r+1)·n/N)
    starts[static_cast<std::size_t>(r)] = static_cast<int>(n * r / size);
    counts[static_cast<std::size_t>(r)] = static_cast<int>(n * (r + 1) / size) - starts[static_cast<std::size_t>(r)];
  }
  const int mine = counts[static_cast<std::size_t>(c.rank())];
  std::vector<T> pieces(static_cast<std::size_t>(mine) * static_cast<std::size_t>(size));
  std::vector<int> piece_counts(static_cast<std::size_t>(size), mine), piece_starts(static_cast<std::size_t>(size));
  for (int r = 0; r < size; ++r) piece_starts[static_cast<std::size_t>(r)] = r * mine;
  check(MPI_Alltoallv(values, counts.data(), starts.data(), type, pieces.data(), piece_counts.data(),
                      piece_starts.data(), type, comm),
        "MPI_Alltoallv");
  T* sum = pieces.data();  // rank 0's piece first, then rank 1's added, ...: one fixed order
  for (int r = 1; r < size; ++r) {
    const T* from = pieces.data() + static_cast<std::size_t>(r) * static_cast<std::size_t>(mine);
    for (int i = 0; i < mine; ++i) sum[i] += from[i];
  }
  check(MPI_Allgatherv(sum, mine, type, values, counts.data(), starts.data(), type, comm), "MPI_Allgatherv");
}

}  // namespace

Session::Session(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (initialized) return;
  int provided = 0;
  if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
    throw Error("mpi: MPI_Init_thread failed");
  owns_ = true;
}

Session::~Session() {
  if (owns_ && active()) MPI_Finalize();
}

bool active() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  return initialized && !finalized;
}

Communicator Communicator::world() {
  require(active(), "mpi: MPI is not initialized (create a gradhpo::mpi::Session, or call MPI_Init first)");
  return Communicator(MPI_COMM_WORLD);
}

Communicator::Communicator(MPI_Comm comm) {
  require(active(), "mpi: MPI is not initialized (create a gradhpo::mpi::Session, or call MPI_Init first)");
  auto* own = new MPI_Comm(MPI_COMM_NULL);
  // The duplicate is ours: freed with the last copy of this Communicator while MPI is still up
  // (after MPI_Finalize there is nothing left to free).
  handle_.reset(own, [](void* p) {
    auto* c = static_cast<MPI_Comm*>(p);
    if (*c != MPI_COMM_NULL && active()) MPI_Comm_free(c);
    delete c;
  });
  const int rc = MPI_Comm_dup(comm, own);
  if (rc != MPI_SUCCESS) throw Error("MPI_Comm_dup failed: " + error_text(rc));
  MPI_Comm_set_errhandler(*own, MPI_ERRORS_RETURN);
  MPI_Comm_rank(*own, &rank_);
  MPI_Comm_size(*own, &size_);
}

MPI_Comm Communicator::comm() const { return *static_cast<MPI_Comm*>(handle_.get()); }

std::string Communicator::where() const {
  return "rank " + std::to_string(rank_) + " of " + std::to_string(size_);
}

void Communicator::check(int rc, const char* call) const {
  if (rc != MPI_SUCCESS) throw Error(std::string(call) + " failed on " + where() + ": " + error_text(rc));
}

void Communicator::barrier() const { check(MPI_Barrier(comm()), "MPI_Barrier"); }

void Communicator::broadcast(std::string& bytes, int root) const {
  unsigned long long length = bytes.size();
  check(MPI_Bcast(&length, 1, MPI_UNSIGNED_LONG_LONG, root, comm()), "MPI_Bcast");
  bytes.resize(static_cast<std::size_t>(length));
  check(MPI_Bcast(bytes.data(), as_count(bytes.size(), "a broadcast"), MPI_BYTE, root, comm()), "MPI_Bcast");
}

std::vector<std::string> Communicator::gather(const std::string& bytes, int root) const {
  const int mine = as_count(bytes.size(), "a gather");
  std::vector<int> counts(rank_ == root ? static_cast<std::size_t>(size_) : 0);
  check(MPI_Gather(&mine, 1, MPI_INT, counts.data(), 1, MPI_INT, root, comm()), "MPI_Gather");
  std::vector<int> offsets(counts.size());
  std::size_t total = 0;
  for (std::size_t r = 0; r < counts.size(); ++r) {
    offsets[r] = as_count(total, "a gather");
    total += static_cast<std::size_t>(counts[r]);
  }
  std::string all(total, '\0');
  check(MPI_Gatherv(bytes.data(), mine, MPI_BYTE, all.data(), counts.data(), offsets.data(), MPI_BYTE, root, comm()),
        "MPI_Gatherv");
  std::vector<std::string> out;
  for (std::size_t r = 0; r < counts.size(); ++r)
    out.push_back(all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(counts[r])));
  return out;
}

void Communicator::sum_in_rank_order(double* values, std::int64_t n) const {
  sum_in_rank_order_of(*this, values, n, MPI_DOUBLE, [this](int rc, const char* call) { check(rc, call); }, comm());
}

void Communicator::sum_in_rank_order(float* values, std::int64_t n) const {
  sum_in_rank_order_of(*this, values, n, MPI_FLOAT, [this](int rc, const char* call) { check(rc, call); }, comm());
}

void Communicator::send(int destination, int tag, const std::string& bytes) const {
  check(MPI_Send(bytes.data(), as_count(bytes.size(), "a message"), MPI_BYTE, destination, tag, comm()), "MPI_Send");
}

Message Communicator::receive(std::optional<int> source, std::optional<int> tag) const {
  MPI_Status status;
  check(MPI_Probe(source.value_or(MPI_ANY_SOURCE), tag.value_or(MPI_ANY_TAG), comm(), &status), "MPI_Probe");
  int count = 0;
  check(MPI_Get_count(&status, MPI_BYTE, &count), "MPI_Get_count");
  Message m{status.MPI_SOURCE, status.MPI_TAG, std::string(static_cast<std::size_t>(count), '\0')};
  check(MPI_Recv(m.bytes.data(), count, MPI_BYTE, m.source, m.tag, comm(), MPI_STATUS_IGNORE), "MPI_Recv");
  return m;
}

std::optional<Message> Communicator::try_receive(std::optional<int> source, std::optional<int> tag) const {
  int flag = 0;
  MPI_Status status;
  check(MPI_Iprobe(source.value_or(MPI_ANY_SOURCE), tag.value_or(MPI_ANY_TAG), comm(), &flag, &status), "MPI_Iprobe");
  if (!flag) return std::nullopt;
  return receive(status.MPI_SOURCE, status.MPI_TAG);
}

void Communicator::abort(const std::string& why) const {
  std::fprintf(stderr, "gradhpo: %s: %s\n", where().c_str(), why.c_str());
  std::fflush(stderr);
  MPI_Abort(comm(), 1);
  std::abort();  // MPI_Abort does not return; this keeps [[noreturn]] honest if it did
}

}  // namespace gradhpo::mpi
