// One description of a command's options, serving the command line, JSON experiment files and
// `--set key=value` overrides alike (Ceres' Options::IsValid in one place): each option has a
// key, a help text with its unit, a default (the field's value when registered), and a range or
// a list of choices, checked the same way whichever way the value arrived. A JSON file with an
// unknown key, or a value out of range, is refused naming the file, the key and what is allowed.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

namespace gradhpo::tools {

class OptionSet {
 public:
  void integer(const std::string& key, std::int64_t* value, std::int64_t lo, std::int64_t hi, const std::string& help);
  void integer(const std::string& key, int* value, int lo, int hi, const std::string& help);
  void seed(const std::string& key, std::uint64_t* value, const std::string& help);
  void real(const std::string& key, double* value, double lo, double hi, const std::string& help);
  void text(const std::string& key, std::string* value, std::vector<std::string> choices, const std::string& help);
  /// A free text (a folder, a file): no choices.
  void path(const std::string& key, std::string* value, const std::string& help);
  void reals(const std::string& key, std::vector<double>* value, double lo, double hi, const std::string& help);
  /// A list of whole numbers in [lo, hi] (may be empty: `--set hidden=[]`).
  void integers(const std::string& key, std::vector<std::int64_t>* value, std::int64_t lo, std::int64_t hi,
                const std::string& help);
  /// A non-empty list of names from `choices`: a JSON array, or one comma-separated string
  /// (`--set methods=forward,random`).
  void texts(const std::string& key, std::vector<std::string>* value, std::vector<std::string> choices,
             const std::string& help);
  void flag(const std::string& key, bool* value, const std::string& help);

  /// Adds `--<key>` for every option to a CLI11 command (defaults shown, ranges checked).
  void add_to(CLI::App& cmd);
  /// Sets every key of a JSON object; `where` names the file in messages.
  void load(const nlohmann::json& object, const std::string& where);
  /// Reads a JSON file and loads it.
  void load_file(const std::string& file);
  /// "key=value" (the value parsed as JSON when it is JSON, else as a string).
  void set(const std::string& assignment, const std::string& where = "--set");
  /// Every option's current value, by key.
  nlohmann::json to_json() const;
  /// Re-checks every value (after CLI11 parsing) and throws Error naming the first bad one.
  void validate(const std::string& where = "command line") const;

  /// The keys whose flags were given on `cmd`'s command line (after CLI11 parsed it).
  std::set<std::string> given_on(const CLI::App& cmd) const;
  /// A command's sources in the conventional order, later ones winning: the defaults, the
  /// `config_file` (empty: none), the flags given on `cmd`'s command line, then each of `sets`
  /// (--set key=value). Call after CLI11 parsed `cmd` (the flags' values are in the fields).
  /// Returns every key a source gave.
  std::set<std::string> apply_sources(const CLI::App& cmd, const std::string& config_file,
                                      const std::vector<std::string>& sets);
  /// Whether a resumed run may take `wanted` for `key` instead of the `stored` value.
  using MayChange = std::function<bool(const std::string& key, const nlohmann::json& stored, const nlohmann::json& wanted)>;
  /// --resume: every value becomes the `stored` run's; each key of `given` whose current value
  /// differs from the stored one is kept where `may_change` allows it, else refused with an Error
  /// naming the flag, both values and `folder`. Returns the keys that changed.
  std::vector<std::string> resume_from(const nlohmann::json& stored, const std::set<std::string>& given,
                                       const MayChange& may_change, const std::string& folder);

 private:
  struct Option {
    std::string key, help;
    std::function<void(const nlohmann::json&, const std::string&)> assign;  // checks, then sets
    std::function<nlohmann::json()> get;
    std::function<void(CLI::App&)> add;
  };
  const Option& find(const std::string& key, const std::string& where) const;
  std::vector<Option> options_;
};

}  // namespace gradhpo::tools
