// A method's options, declared once as a typed list (Ceres' Solver::Options, checked in one place,
// STYLE.md 15): each option has a name, a type, a range or a list of choices, a default and a help
// text. From that one list come every method's validate(), the command line's flags, the JSON keys
// of a config file and `--help`: nothing about an option is written twice.
//
//     static const OptionSpecs specs = {
//         OptionSpec::choice("policy", "store-all", {"store-all", "exact-reversal", "checkpoint"},
//                            "memory policy of the backward pass"),
//         OptionSpec::integer("checkpoint-every", 0, 0, 1 << 30, "checkpoint: steps per segment (0: ⌈√T⌉)"),
//     };
//     Options o = Options::parse(specs, {{"policy", "checkpoint"}}, "reverse");  // a key–value map
//     Options j = Options::from_json(specs, R"({"policy": "checkpoint"})", "reverse");
//     o.text("policy"); o.integer("checkpoint-every");
//
// Names are the long flags without "--" (kebab-case). A value that arrives as text ("0.1",
// "true", "1,2,3") is parsed by its option's type; every value is checked against its range
// (or choices), and an unknown name, a wrong type or a value out of range is an Error naming the
// method, the option and what is allowed. Nothing here depends on a JSON or CLI library: the JSON
// reader is private to options.cpp.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

namespace gradhpo::hpo {

enum class OptionType : std::uint8_t {
  integer,  ///< a whole number in [lo, hi]
  real,     ///< a finite number in [lo, hi]
  boolean,  ///< true/false (text: "true", "false", "1", "0", "yes", "no", "on", "off")
  text,     ///< one of `choices` (free text when choices is empty)
  reals,    ///< a list of finite numbers, each in [lo, hi] (text: "0.1,0.2"; JSON: an array)
};
const char* option_type_name(OptionType t);

using OptionValue = std::variant<std::int64_t, double, bool, std::string, std::vector<double>>;

struct OptionSpec {
  std::string name;
  OptionType type = OptionType::real;
  OptionValue default_value;
  double lo = 0, hi = 0;                ///< integer, real, reals
  std::vector<std::string> choices;     ///< text (empty: any text)
  std::string help;                     ///< one line, with the unit and the paper's symbol where there is one

  static OptionSpec integer(std::string name, std::int64_t def, std::int64_t lo, std::int64_t hi, std::string help);
  static OptionSpec real(std::string name, double def, double lo, double hi, std::string help);
  static OptionSpec boolean(std::string name, bool def, std::string help);
  static OptionSpec choice(std::string name, std::string def, std::vector<std::string> choices, std::string help);
  static OptionSpec text(std::string name, std::string def, std::string help);
  static OptionSpec reals(std::string name, std::vector<double> def, double lo, double hi, std::string help);

  /// "[0, 1]", "store-all | exact-reversal | checkpoint", "true | false".
  std::string allowed() const;
  /// Throws Error "<who>: option '<name>' ..." when `v` has the wrong type or is out of range.
  void check(const OptionValue& v, const std::string& who) const;
  /// Parses a text value by the option's type (then checks it).
  OptionValue parse(const std::string& text, const std::string& who) const;
};
using OptionSpecs = std::vector<OptionSpec>;

/// `--name <allowed> (default d): help` per option, one per line, for `--help` and the docs.
std::string options_help(const OptionSpecs& specs);
/// The spec called `name`, or null.
const OptionSpec* find_option(const OptionSpecs& specs, const std::string& name);

/// Validated values for one list of specs: every option has a value (its default until set).
class Options {
 public:
  Options() = default;
  /// The defaults. `who` (a method's name) prefixes every error message.
  explicit Options(const OptionSpecs& specs, std::string who = "options");
  /// Defaults overridden by a key–value map of texts; unknown keys are refused by name.
  static Options parse(const OptionSpecs& specs, const std::map<std::string, std::string>& values, std::string who);
  /// Defaults overridden by a JSON object's keys (numbers, booleans, strings, arrays of numbers).
  static Options from_json(const OptionSpecs& specs, const std::string& json_object, std::string who);

  /// Sets one option, checked; throws Error for an unknown name or a bad value.
  void set(const std::string& name, const OptionValue& value);
  /// Sets one option from text ("0.1", "true", "a,b"), parsed by its type.
  void set_text(const std::string& name, const std::string& value);

  std::int64_t integer(const std::string& name) const;
  double real(const std::string& name) const;  ///< also reads an integer option
  bool boolean(const std::string& name) const;
  const std::string& text(const std::string& name) const;
  const std::vector<double>& reals(const std::string& name) const;
  const OptionValue& value(const std::string& name) const;

  const OptionSpecs& specs() const { return specs_; }
  const std::string& who() const { return who_; }
  /// {"name": value, ...} in spec order: what a run folder's config records.
  std::string to_json() const;
  /// "policy = checkpoint, checkpoint-every = 0": every option that differs from its default.
  std::string brief() const;
  bool operator==(const Options& other) const { return values_ == other.values_; }

 private:
  const OptionSpec& spec(const std::string& name) const;
  OptionSpecs specs_;
  std::vector<OptionValue> values_;  ///< one per spec, in spec order
  std::string who_ = "options";
};

}  // namespace gradhpo::hpo
