#include "option_set.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gradhpo/engine/error.h>

namespace gradhpo::tools {

namespace {

std::string range_text(double lo, double hi) {
  std::ostringstream s;
  s << "[" << lo << ", " << hi << "]";
  return s.str();
}

[[noreturn]] void bad(const std::string& where, const std::string& key, const std::string& why) {
  throw Error(where + ": '" + key + "' " + why);
}

/// `lo`, `hi`: the allowed range, for the message.
double as_number(const nlohmann::json& v, const std::string& where, const std::string& key, double lo, double hi) {
  if (!v.is_number()) bad(where, key, "must be a number, got " + v.dump());
  const double x = v.get<double>();
  // JSON has no NaN or infinity: a non-finite number here is a literal too large for a double
  // (OptionSet::set turns "1e400" into one).
  if (!std::isfinite(x)) bad(where, key, "is out of range: the number overflows a double; allowed " + range_text(lo, hi));
  return x;
}

/// A command-line real, checked against [lo, hi]: "" when it is fine, else what is wrong with it.
/// strtod rather than std::stod, so that "1e400" is called out of range (not "not a number") and
/// trailing junk ("1.5x") is refused.
std::string check_real(const std::string& s, double lo, double hi) {
  const std::string allowed = "; allowed " + range_text(lo, hi);
  const char* begin = s.c_str();
  char* end = nullptr;
  errno = 0;
  const double x = std::strtod(begin, &end);
  if (end == begin || *end != '\0') return "'" + s + "' is not a number" + allowed;
  if (errno == ERANGE && std::abs(x) > 1) return s + " is out of range: it overflows a double" + allowed;
  if (std::isnan(x)) return s + " is not a number" + allowed;
  if (!std::isfinite(x) || x < lo || x > hi) return s + " is out of range" + allowed;
  return {};
}

}  // namespace

void OptionSet::integer(const std::string& key, std::int64_t* value, std::int64_t lo, std::int64_t hi,
                        const std::string& help) {
  options_.push_back({key, help,
                      [=](const nlohmann::json& v, const std::string& where) {
                        const double x = as_number(v, where, key, static_cast<double>(lo), static_cast<double>(hi));
                        if (x != std::floor(x)) bad(where, key, "must be a whole number, got " + v.dump());
                        if (x < static_cast<double>(lo) || x > static_cast<double>(hi))
                          bad(where, key, "is " + v.dump() + "; allowed " + range_text(static_cast<double>(lo), static_cast<double>(hi)));
                        *value = static_cast<std::int64_t>(x);
                      },
                      [=] { return nlohmann::json(*value); },
                      [=](CLI::App& cmd) {
                        cmd.add_option("--" + key, *value, help)->check(CLI::Range(lo, hi))->capture_default_str();
                      }});
}

void OptionSet::integer(const std::string& key, int* value, int lo, int hi, const std::string& help) {
  options_.push_back({key, help,
                      [=](const nlohmann::json& v, const std::string& where) {
                        const double x = as_number(v, where, key, lo, hi);
                        if (x != std::floor(x)) bad(where, key, "must be a whole number, got " + v.dump());
                        if (x < lo || x > hi) bad(where, key, "is " + v.dump() + "; allowed " + range_text(lo, hi));
                        *value = static_cast<int>(x);
                      },
                      [=] { return nlohmann::json(*value); },
                      [=](CLI::App& cmd) { cmd.add_option("--" + key, *value, help)->check(CLI::Range(lo, hi))->capture_default_str(); }});
}

void OptionSet::seed(const std::string& key, std::uint64_t* value, const std::string& help) {
  // A seed is a non-negative whole number; "-1" must not wrap around to 2^64 − 1.
  options_.push_back({key, help,
                      [=](const nlohmann::json& v, const std::string& where) {
                        if (!v.is_number_integer() || (v.is_number_integer() && !v.is_number_unsigned() && v.get<std::int64_t>() < 0))
                          bad(where, key, "must be a whole number >= 0, got " + v.dump());
                        *value = v.get<std::uint64_t>();
                      },
                      [=] { return nlohmann::json(*value); },
                      [=](CLI::App& cmd) {
                        // Not CLI::NonNegativeNumber: its message prints the range up to DBL_MAX in full.
                        cmd.add_option("--" + key, *value, help)
                            ->check(CLI::Validator(
                                [](std::string& s) -> std::string {
                                  const bool digits = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
                                    return c >= '0' && c <= '9';
                                  });
                                  if (!s.empty() && s[0] == '-') return "must be >= 0, got " + s;
                                  if (!digits) return "must be a whole number >= 0, got '" + s + "'";
                                  errno = 0;
                                  std::strtoull(s.c_str(), nullptr, 10);
                                  if (errno == ERANGE) return s + " is out of range: a seed is at most 2^64 - 1";
                                  return {};
                                },
                                "a whole number >= 0"))
                            ->capture_default_str();
                      }});
}

void OptionSet::real(const std::string& key, double* value, double lo, double hi, const std::string& help) {
  options_.push_back({key, help,
                      [=](const nlohmann::json& v, const std::string& where) {
                        const double x = as_number(v, where, key, lo, hi);
                        if (x < lo || x > hi) bad(where, key, "is " + v.dump() + "; allowed " + range_text(lo, hi));
                        *value = x;
                      },
                      [=] { return nlohmann::json(*value); },
                      [=](CLI::App& cmd) {
                        cmd.add_option("--" + key, *value, help)
                            ->check(CLI::Validator(
                                [lo, hi](std::string& s) -> std::string { return check_real(s, lo, hi); },
                                range_text(lo, hi)))
                            ->capture_default_str();
                      }});
}

void OptionSet::text(const std::string& key, std::string* value, std::vector<std::string> choices, const std::string& help) {
  options_.push_back({key, help,
                      [=](const nlohmann::json& v, const std::string& where) {
                        if (!v.is_string()) bad(where, key, "must be a string, got " + v.dump());
                        const std::string s = v.get<std::string>();
                        if (!choices.empty() && std::find(choices.begin(), choices.end(), s) == choices.end()) {
                          std::string all;
                          for (const std::string& c : choices) all += (all.empty() ? "" : ", ") + c;
                          bad(where, key, "is '" + s + "'; allowed: " + all);
                        }
                        *value = s;
                      },
                      [=] { return nlohmann::json(*value); },
                      [=](CLI::App& cmd) {
                        CLI::Option* o = cmd.add_option("--" + key, *value, help)->capture_default_str();
                        if (!choices.empty()) o->check(CLI::IsMember(choices));
                      }});
}

void OptionSet::path(const std::string& key, std::string* value, const std::string& help) { text(key, value, {}, help); }

void OptionSet::reals(const std::string& key, std::vector<double>* value, double lo, double hi, const std::string& help) {
  options_.push_back({key, help,
                      [=](const nlohmann::json& v, const std::string& where) {
                        if (!v.is_array() || v.empty()) bad(where, key, "must be a non-empty list of numbers, got " + v.dump());
                        std::vector<double> out;
                        for (const auto& e : v) {
                          const double x = as_number(e, where, key, lo, hi);
                          if (x < lo || x > hi) bad(where, key, "has " + e.dump() + "; allowed " + range_text(lo, hi));
                          out.push_back(x);
                        }
                        *value = out;
                      },
                      [=] { return nlohmann::json(*value); },
                      [=](CLI::App& cmd) {
                        cmd.add_option("--" + key, *value, help + " (comma-separated)")
                            ->delimiter(',')
                            ->check(CLI::Range(lo, hi))
                            ->capture_default_str();
                      }});
}

void OptionSet::integers(const std::string& key, std::vector<std::int64_t>* value, std::int64_t lo, std::int64_t hi,
                         const std::string& help) {
  options_.push_back({key, help,
                      [=](const nlohmann::json& v, const std::string& where) {
                        if (!v.is_array()) bad(where, key, "must be a list of whole numbers, got " + v.dump());
                        std::vector<std::int64_t> out;
                        for (const auto& e : v) {
                          const double x = as_number(e, where, key, static_cast<double>(lo), static_cast<double>(hi));
                          if (x != std::floor(x) || x < static_cast<double>(lo) || x > static_cast<double>(hi))
                            bad(where, key, "has " + e.dump() + "; allowed whole numbers in " +
                                                range_text(static_cast<double>(lo), static_cast<double>(hi)));
                          out.push_back(static_cast<std::int64_t>(x));
                        }
                        *value = out;
                      },
                      [=] { return nlohmann::json(*value); },
                      [=](CLI::App& cmd) {
                        cmd.add_option("--" + key, *value, help + " (comma-separated)")
                            ->delimiter(',')
                            ->check(CLI::Range(lo, hi))
                            ->capture_default_str();
                      }});
}

void OptionSet::texts(const std::string& key, std::vector<std::string>* value, std::vector<std::string> choices,
                      const std::string& help) {
  options_.push_back({key, help,
                      [=](const nlohmann::json& v, const std::string& where) {
                        std::vector<std::string> out;
                        if (v.is_string()) {
                          std::stringstream items(v.get<std::string>());
                          for (std::string item; std::getline(items, item, ',');) out.push_back(item);
                        } else if (v.is_array()) {
                          for (const auto& e : v) {
                            if (!e.is_string()) bad(where, key, "must be a list of names, got " + v.dump());
                            out.push_back(e.get<std::string>());
                          }
                        } else {
                          bad(where, key, "must be a list of names, got " + v.dump());
                        }
                        if (out.empty()) bad(where, key, "must name at least one of its choices");
                        for (const std::string& item : out)
                          if (std::find(choices.begin(), choices.end(), item) == choices.end()) {
                            std::string all;
                            for (const std::string& c : choices) all += (all.empty() ? "" : ", ") + c;
                            bad(where, key, "has '" + item + "'; allowed: " + all);
                          }
                        *value = out;
                      },
                      [=] { return nlohmann::json(*value); },
                      [=](CLI::App& cmd) {
                        cmd.add_option("--" + key, *value, help + " (comma-separated)")
                            ->delimiter(',')
                            ->check(CLI::IsMember(choices))
                            ->capture_default_str();
                      }});
}

void OptionSet::flag(const std::string& key, bool* value, const std::string& help) {
  options_.push_back({key, help,
                      [=](const nlohmann::json& v, const std::string& where) {
                        if (!v.is_boolean()) bad(where, key, "must be true or false, got " + v.dump());
                        *value = v.get<bool>();
                      },
                      [=] { return nlohmann::json(*value); },
                      [=](CLI::App& cmd) { cmd.add_flag("--" + key, *value, help); }});
}

void OptionSet::add_to(CLI::App& cmd) {
  for (const Option& o : options_) o.add(cmd);
}

const OptionSet::Option& OptionSet::find(const std::string& key, const std::string& where) const {
  for (const Option& o : options_)
    if (o.key == key) return o;
  std::string all;
  for (const Option& o : options_) all += (all.empty() ? "" : ", ") + o.key;
  throw Error(where + ": unknown key '" + key + "' (known: " + all + ")");
}

void OptionSet::load(const nlohmann::json& object, const std::string& where) {
  if (!object.is_object()) throw Error(where + ": expected a JSON object of options, got " + object.dump().substr(0, 80));
  for (auto it = object.begin(); it != object.end(); ++it) {
    if (it.key() == "comment" || it.key() == "paper" || it.key() == "scaled_down") continue;  // documentation keys
    find(it.key(), where).assign(it.value(), where);
  }
}

void OptionSet::load_file(const std::string& file) {
  std::ifstream f(file);
  if (!f) throw Error("cannot open config file '" + file + "'");
  nlohmann::json j;
  try {
    f >> j;
  } catch (const nlohmann::json::exception& e) {
    throw Error("config file '" + file + "' is not valid JSON: " + e.what());
  }
  load(j, file);
}

void OptionSet::set(const std::string& assignment, const std::string& where) {
  const std::size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) throw Error(where + ": expected key=value, got '" + assignment + "'");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  nlohmann::json v = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) {
    // A number JSON cannot hold ("1e400" overflows a double): infinity, which the option's check
    // calls out of range; anything else is a bare word, a string.
    char* end = nullptr;
    errno = 0;
    const double x = std::strtod(text.c_str(), &end);
    v = !text.empty() && *end == '\0' && errno == ERANGE && std::abs(x) > 1 ? nlohmann::json(x) : nlohmann::json(text);
  }
  find(key, where).assign(v, where);
}

nlohmann::json OptionSet::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (const Option& o : options_) j[o.key] = o.get();
  return j;
}

void OptionSet::validate(const std::string& where) const {
  for (const Option& o : options_) o.assign(o.get(), where);
}

std::set<std::string> OptionSet::given_on(const CLI::App& cmd) const {
  std::set<std::string> given;
  for (const Option& o : options_)
    if (cmd.count("--" + o.key) > 0) given.insert(o.key);
  return given;
}

std::set<std::string> OptionSet::apply_sources(const CLI::App& cmd, const std::string& config_file,
                                               const std::vector<std::string>& sets) {
  std::set<std::string> given = given_on(cmd);
  nlohmann::json flags = nlohmann::json::object();  // what the command line said, before the file
  for (const std::string& key : given) flags[key] = find(key, "command line").get();
  if (!config_file.empty()) {
    std::ifstream f(config_file);
    if (!f) throw Error("cannot open config file '" + config_file + "'");
    nlohmann::json j;
    try {
      f >> j;
    } catch (const nlohmann::json::exception& e) {
      throw Error("config file '" + config_file + "' is not valid JSON: " + e.what());
    }
    load(j, config_file);
    for (auto it = j.begin(); it != j.end(); ++it) given.insert(it.key());
    load(flags, "command line");  // the flags given win over the file
  }
  for (const std::string& s : sets) {
    set(s);
    given.insert(s.substr(0, s.find('=')));
  }
  return given;
}

std::vector<std::string> OptionSet::resume_from(const nlohmann::json& stored, const std::set<std::string>& given,
                                                const MayChange& may_change, const std::string& folder) {
  const nlohmann::json wanted = to_json();
  load(stored, folder + "'s stored config");
  std::vector<std::string> changed;
  for (const std::string& key : given) {
    if (!wanted.contains(key) || !stored.contains(key) || wanted[key] == stored[key]) continue;
    if (!may_change(key, stored[key], wanted[key]))
      throw Error("--resume " + folder + ": --" + key + " " + wanted[key].dump() + " conflicts with the stored run's " +
                  key + " " + stored[key].dump() +
                  "; a resumed run keeps every option that can change its results (start a new run with --out, or "
                  "replace this one with --overwrite)");
    find(key, "--resume").assign(wanted[key], "--resume");
    changed.push_back(key);
  }
  return changed;
}

}  // namespace gradhpo::tools
