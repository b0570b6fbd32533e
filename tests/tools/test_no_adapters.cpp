// tools/ constructs every method by name through the registry (hpo/registry.h; issue 18): it
// calls no `*_hypergradient` free function and wraps no method in an adapter lambda. This test
// reads tools/*.cpp and tools/*.h (comments and string literals left out) and fails naming the
// file, the line and the construct.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

/// The source with comments and string literals blanked (newlines kept, so lines still count).
std::string code_only(const std::string& s) {
  std::string out = s;
  enum { code, line_comment, block_comment, string, character } state = code;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i], next = i + 1 < s.size() ? s[i + 1] : '\0';
    switch (state) {
      case code:
        if (c == '/' && next == '/') state = line_comment;
        else if (c == '/' && next == '*') state = block_comment;
        else if (c == '"') state = string;
        else if (c == '\'') state = character;
        else continue;
        out[i] = ' ';
        break;
      case line_comment:
        if (c == '\n') state = code;
        else out[i] = ' ';
        break;
      case block_comment:
        if (c == '*' && next == '/') {
          out[i] = out[i + 1] = ' ';
          ++i;
          state = code;
        } else if (c != '\n') {
          out[i] = ' ';
        }
        break;
      case string:
      case character:
        if (c == '\\') {
          out[i] = ' ';
          if (i + 1 < s.size() && s[i + 1] != '\n') out[++i] = ' ';
        } else if (c == (state == string ? '"' : '\'')) {
          out[i] = ' ';
          state = code;
        } else if (c != '\n') {
          out[i] = ' ';
        }
        break;
    }
  }
  return out;
}

struct Rule {
  const char* what;
  std::regex pattern;
};

const std::vector<Rule>& rules() {
  static const std::vector<Rule> r = {
      // (check_hypergradient is eval/ladder.h's finite-difference check of a result, no method)
      {"a call of a *_hypergradient free function", std::regex(R"(\b(?!check_hypergradient\b)\w+_hypergradient\s*\()")},
      {"the HypergradientMethod adapter type", std::regex(R"(\bHypergradientMethod\b)")},
      {"a lambda returning a Hypergradient", std::regex(R"(\]\s*\([^()]*\)[^{};]*->\s*(hpo::)?Hypergradient\b)")},
      {"an adapter lambda taking (problem, θ, segment)", std::regex(R"(\[[^\]]*\]\s*\([^()]*\bSegment\s*\*)")},
  };
  return r;
}

/// "file:line: what" for every violation in `text` (a file's contents).
std::vector<std::string> violations(const std::string& file, const std::string& text) {
  const std::string code = code_only(text);
  std::vector<std::string> out;
  for (const Rule& rule : rules())
    for (auto it = std::sregex_iterator(code.begin(), code.end(), rule.pattern); it != std::sregex_iterator(); ++it) {
      const auto at = static_cast<std::size_t>(it->position());
      const long line = 1 + std::count(code.begin(), code.begin() + static_cast<long>(at), '\n');
      out.push_back(file + ":" + std::to_string(line) + ": " + rule.what);
    }
  return out;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("the detector finds each adapter construct, and not the same words in comments or strings") {
  const std::string adapter = R"(
    auto m = [fo](const hpo::BilevelProblem& p, const Tensor& th, const hpo::Segment* s) {
      return hpo::forward_hypergradient(p, th, fo, s);
    };
    hpo::HypergradientMethod h = m;
    auto k = [&](const hpo::BilevelProblem& p, const Tensor& t) -> hpo::Hypergradient { return x.compute(p, t); };
  )";
  const std::vector<std::string> v = violations("x.cpp", adapter);
  REQUIRE(v.size() == 4);
  CHECK(v[0] == "x.cpp:3: a call of a *_hypergradient free function");
  CHECK(v[1] == "x.cpp:5: the HypergradientMethod adapter type");
  CHECK(v[2] == "x.cpp:6: a lambda returning a Hypergradient");
  CHECK(v[3] == "x.cpp:2: an adapter lambda taking (problem, θ, segment)");
  const std::string harmless = R"(
    // forward_hypergradient(p, th) used to be called here; HypergradientMethod is gone
    /* [](const hpo::Segment* s) -> Hypergradient */
    std::cout << "reverse_hypergradient(" << '"';
    const hpo::HypergradientCheck c = hpo::check_hypergradient(p, theta, h.d_theta);
    const hpo::Hypergradient h = method->compute(p, theta);
  )";
  const std::vector<std::string> none = violations("y.cpp", harmless);
  CHECK_MESSAGE(none.empty(), (none.empty() ? "" : none.front()));
}

TEST_CASE("tools/ calls no *_hypergradient function and holds no adapter lambdas") {
  const fs::path tools = fs::path(GRADHPO_SOURCE_DIR) / "tools";
  REQUIRE(fs::is_directory(tools));
  int files = 0;
  for (const fs::directory_entry& e : fs::recursive_directory_iterator(tools)) {
    const std::string ext = e.path().extension().string();
    if (!e.is_regular_file() || (ext != ".cpp" && ext != ".h")) continue;
    ++files;
    for (const std::string& where : violations(fs::relative(e.path(), tools.parent_path()).string(), slurp(e.path())))
      FAIL_CHECK(where);
  }
  CHECK(files >= 10);
}
