#include "task_pool.h"

#include <chrono>
#include <cstring>
#include <exception>
#include <optional>
#include <thread>

#include "../../engine/error.h"

namespace gradhpo::mpi {

namespace {

// Tags of the pool's messages (the communicator is a private duplicate: no one else's match).
constexpr int kResult = 1;  // worker -> 0: an outcome (or, the first time, none) and a request for work
constexpr int kTask = 2;    // 0 -> worker: the index to run
constexpr int kStop = 3;    // 0 -> worker: nothing left

std::string encode_index(std::int64_t i) {
  std::string s(sizeof i, '\0');
  std::memcpy(s.data(), &i, sizeof i);
  return s;
}

std::int64_t decode_index(const std::string& s) {
  require(s.size() >= sizeof(std::int64_t), "mpi task pool: a message of " + std::to_string(s.size()) +
                                                " bytes where a task index (8 bytes) was expected");
  std::int64_t i = 0;
  std::memcpy(&i, s.data(), sizeof i);
  return i;
}

// An outcome on the wire: index (8 bytes), ok (1 byte), then the result or the error text.
std::string encode(const TaskOutcome& o) {
  return encode_index(o.index) + static_cast<char>(o.ok ? 1 : 0) + (o.ok ? o.bytes : o.error);
}

TaskOutcome decode(const std::string& s, int rank) {
  TaskOutcome o;
  o.index = decode_index(s);
  require(s.size() > sizeof(std::int64_t), "mpi task pool: an outcome message without its status byte");
  o.ok = s[sizeof(std::int64_t)] != 0;
  (o.ok ? o.bytes : o.error) = s.substr(sizeof(std::int64_t) + 1);
  o.rank = rank;
  return o;
}

TaskOutcome run_one(const Communicator& comm, std::int64_t index,
                    const std::function<std::string(std::int64_t)>& task) {
  TaskOutcome o;
  o.index = index;
  o.rank = comm.rank();
  try {
    o.bytes = task(index);
    o.ok = true;
  } catch (const std::exception& e) {
    o.error = e.what();
  } catch (...) {
    comm.abort("task " + std::to_string(index) + " threw something that is not a std::exception");
  }
  return o;
}

void coordinate(const Communicator& comm, std::int64_t count, std::vector<TaskOutcome>& out,
                const std::function<void(const TaskOutcome&)>& on_done) {
  std::int64_t next = 0;
  int working = comm.size() - 1;
  while (working > 0) {
    // Polled with a short sleep: a blocking receive in Open MPI spins a core, which the workers
    // (on an oversubscribed machine) need.
    std::optional<Message> m = comm.try_receive(std::nullopt, kResult);
    if (!m) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    if (!m->bytes.empty()) {  // empty: a worker's first request, with no outcome yet
      TaskOutcome o = decode(m->bytes, m->source);
      require(o.index >= 0 && o.index < count && out[static_cast<std::size_t>(o.index)].index < 0,
              "mpi task pool: rank " + std::to_string(m->source) + " returned task " + std::to_string(o.index) +
                  ", which was not outstanding");
      if (on_done) on_done(o);
      out[static_cast<std::size_t>(o.index)] = std::move(o);
    }
    if (next < count) {
      comm.send(m->source, kTask, encode_index(next++));
    } else {
      comm.send(m->source, kStop, "");
      --working;
    }
  }
}

void work(const Communicator& comm, const std::function<std::string(std::int64_t)>& task) {
  comm.send(0, kResult, "");
  for (;;) {
    const Message m = comm.receive(0);
    if (m.tag == kStop) return;
    require(m.tag == kTask, "mpi task pool: " + comm.where() + " got a message with tag " + std::to_string(m.tag));
    comm.send(0, kResult, encode(run_one(comm, decode_index(m.bytes), task)));
  }
}

}  // namespace

std::vector<TaskOutcome> run_tasks(const Communicator& comm, std::int64_t count,
                                   const std::function<std::string(std::int64_t)>& task,
                                   const std::function<void(const TaskOutcome&)>& on_done) {
  require(count >= 0, "mpi task pool: " + std::to_string(count) + " tasks");
  if (comm.size() == 1) {
    std::vector<TaskOutcome> out;
    for (std::int64_t i = 0; i < count; ++i) {
      out.push_back(run_one(comm, i, task));
      if (on_done) on_done(out.back());
    }
    return out;
  }
  if (!comm.is_root()) {
    work(comm, task);
    return {};
  }
  std::vector<TaskOutcome> out(static_cast<std::size_t>(count));
  try {
    coordinate(comm, count, out, on_done);
  } catch (const std::exception& e) {
    // The workers wait on rank 0: an error here (a message it cannot read, a store that cannot
    // commit) can only end the job, with the reason.
    comm.abort(e.what());
  }
  return out;
}

}  // namespace gradhpo::mpi
