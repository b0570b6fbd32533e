// The program's messages for a mistyped command line, as a user sees them: each names what is
// wrong and what is allowed, in a line a person reads (issue 19, "Messages").
#include "cli.h"

#include <string>

using gradhpo::testing::Run;
using gradhpo::testing::run;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("a real option too large for a double is out of range, with the allowed range") {
  for (const char* args : {"hpo --gamma-wd 1e400", "hpo --set gamma-wd=1e400"}) {
    const Run r = run(args);
    INFO(args << "\n" << r.output);
    CHECK(r.status != 0);
    CHECK(has(r.output, "out of range"));
    CHECK(has(r.output, "overflows"));
    CHECK(has(r.output, "[1e-12, 100]"));
    CHECK_FALSE(has(r.output, "not a number"));
  }
  const Run junk = run("hpo --gamma-wd 1.5x");
  INFO(junk.output);
  CHECK(junk.status != 0);
  CHECK(has(junk.output, "'1.5x' is not a number"));
}

TEST_CASE("a negative seed must be >= 0, said in one short line") {
  for (const char* args : {"hpo --seed -1", "hpo --set seed=-1"}) {
    const Run r = run(args);
    INFO(args << "\n" << r.output);
    CHECK(r.status != 0);
    CHECK(has(r.output, "must be"));
    CHECK(has(r.output, ">= 0, got -1"));
    CHECK(r.output.size() < 200);  // not the range up to DBL_MAX written out in ~300 digits
  }
}

TEST_CASE("an unknown subcommand is named, with the list of subcommands") {
  const Run r = run("frobnicate");
  INFO(r.output);
  CHECK(r.status != 0);
  CHECK(has(r.output, "unknown subcommand 'frobnicate'"));
  for (const char* sub : {"demo", "train", "hpo", "check", "hypervariance", "compare", "reproduce", "methods"})
    CHECK(has(r.output, sub));
  CHECK_FALSE(has(r.output, "A subcommand is required"));
  const Run option = run("--frobnicate");
  INFO(option.output);
  CHECK(option.status != 0);
  CHECK(has(option.output, "unknown option '--frobnicate' (options follow a subcommand"));
  CHECK(has(option.output, "the subcommands are: demo, train, hpo"));
}

TEST_CASE("the top-level --help names the program") {
  const Run r = run("--help");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(has(r.output, "Usage: gradhpo "));
}
