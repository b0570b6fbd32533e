#include "options.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

#include <nlohmann/json.hpp>

#include "../engine/error.h"

namespace gradhpo::hpo {

namespace {

/// The shortest text that reads back to the same double (17 significant digits always do).
std::string number_text(double x) {
  for (int digits = 1; digits < 17; ++digits) {
    std::ostringstream r;
    r.precision(digits);
    r << x;
    // strtod, not stod: a near-DBL_MAX bound rounded up to fewer digits reads back as inf, not a throw.
    if (std::strtod(r.str().c_str(), nullptr) == x) return r.str();
  }
  std::ostringstream r;
  r.precision(17);
  r << x;
  return r.str();
}

std::string value_text(const OptionValue& v) {
  struct Visit {
    std::string operator()(std::int64_t x) const { return std::to_string(x); }
    std::string operator()(double x) const { return number_text(x); }
    std::string operator()(bool x) const { return x ? "true" : "false"; }
    std::string operator()(const std::string& x) const { return x; }
    std::string operator()(const std::vector<double>& x) const {
      std::string s;
      for (std::size_t i = 0; i < x.size(); ++i) s += (i ? "," : "") + number_text(x[i]);
      return s;
    }
  };
  return std::visit(Visit{}, v);
}

[[noreturn]] void bad(const std::string& who, const OptionSpec& spec, const std::string& why) {
  throw Error(who + ": option '" + spec.name + "' " + why + " (allowed: " + spec.allowed() + ")");
}

double parse_number(const std::string& text, const std::string& who, const OptionSpec& spec) {
  std::size_t used = 0;
  double x = 0;
  try {
    x = std::stod(text, &used);
  } catch (const std::out_of_range&) {
    bad(who, spec, "is '" + text + "', out of the range of a double");
  } catch (const std::exception&) {
    bad(who, spec, "is '" + text + "', not a number");
  }
  if (used != text.size()) bad(who, spec, "is '" + text + "', not a number");
  return x;
}

}  // namespace

const char* option_type_name(OptionType t) {
  switch (t) {
    case OptionType::integer: return "integer";
    case OptionType::real: return "real";
    case OptionType::boolean: return "boolean";
    case OptionType::text: return "text";
    case OptionType::reals: return "list of reals";
  }
  return "?";
}

OptionSpec OptionSpec::integer(std::string name, std::int64_t def, std::int64_t lo, std::int64_t hi, std::string help) {
  return {std::move(name), OptionType::integer, def, static_cast<double>(lo), static_cast<double>(hi), {}, std::move(help)};
}
OptionSpec OptionSpec::real(std::string name, double def, double lo, double hi, std::string help) {
  return {std::move(name), OptionType::real, def, lo, hi, {}, std::move(help)};
}
OptionSpec OptionSpec::boolean(std::string name, bool def, std::string help) {
  return {std::move(name), OptionType::boolean, def, 0, 0, {}, std::move(help)};
}
OptionSpec OptionSpec::choice(std::string name, std::string def, std::vector<std::string> choices, std::string help) {
  return {std::move(name), OptionType::text, std::move(def), 0, 0, std::move(choices), std::move(help)};
}
OptionSpec OptionSpec::text(std::string name, std::string def, std::string help) {
  return {std::move(name), OptionType::text, std::move(def), 0, 0, {}, std::move(help)};
}
OptionSpec OptionSpec::reals(std::string name, std::vector<double> def, double lo, double hi, std::string help) {
  return {std::move(name), OptionType::reals, std::move(def), lo, hi, {}, std::move(help)};
}

std::string OptionSpec::allowed() const {
  switch (type) {
    case OptionType::integer:
      return "a whole number in [" + std::to_string(static_cast<std::int64_t>(lo)) + ", " +
             std::to_string(static_cast<std::int64_t>(hi)) + "]";
    case OptionType::real: return "a number in [" + number_text(lo) + ", " + number_text(hi) + "]";
    case OptionType::boolean: return "true | false";
    case OptionType::text: {
      if (choices.empty()) return "any text";
      std::string s;
      for (std::size_t i = 0; i < choices.size(); ++i) s += (i ? " | " : "") + choices[i];
      return s;
    }
    case OptionType::reals: return "a comma-separated list of numbers in [" + number_text(lo) + ", " + number_text(hi) + "]";
  }
  return "?";
}

void OptionSpec::check(const OptionValue& v, const std::string& who) const {
  auto in_range = [&](double x) {
    if (!std::isfinite(x)) bad(who, *this, "is " + number_text(x) + ", not finite");
    if (x < lo || x > hi) bad(who, *this, "is " + number_text(x) + ", out of range");
  };
  switch (type) {
    case OptionType::integer:
      if (!std::holds_alternative<std::int64_t>(v)) bad(who, *this, "must be a whole number, got '" + value_text(v) + "'");
      if (const auto x = std::get<std::int64_t>(v); x < static_cast<std::int64_t>(lo) || x > static_cast<std::int64_t>(hi))
        bad(who, *this, "is " + std::to_string(x) + ", out of range");
      return;
    case OptionType::real:
      if (!std::holds_alternative<double>(v)) bad(who, *this, "must be a number, got '" + value_text(v) + "'");
      in_range(std::get<double>(v));
      return;
    case OptionType::boolean:
      if (!std::holds_alternative<bool>(v)) bad(who, *this, "must be true or false, got '" + value_text(v) + "'");
      return;
    case OptionType::text:
      if (!std::holds_alternative<std::string>(v)) bad(who, *this, "must be text, got '" + value_text(v) + "'");
      if (!choices.empty() && std::find(choices.begin(), choices.end(), std::get<std::string>(v)) == choices.end())
        bad(who, *this, "is '" + std::get<std::string>(v) + "'");
      return;
    case OptionType::reals:
      if (!std::holds_alternative<std::vector<double>>(v)) bad(who, *this, "must be a list of numbers, got '" + value_text(v) + "'");
      for (double x : std::get<std::vector<double>>(v)) in_range(x);
      return;
  }
}

OptionValue OptionSpec::parse(const std::string& text, const std::string& who) const {
  OptionValue v;
  switch (type) {
    case OptionType::integer: {
      const double x = parse_number(text, who, *this);
      if (x != std::floor(x) || std::abs(x) > 9.0e15) bad(who, *this, "is '" + text + "', not a whole number");
      v = static_cast<std::int64_t>(x);
      break;
    }
    case OptionType::real: v = parse_number(text, who, *this); break;
    case OptionType::boolean: {
      std::string t = text;
      std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (t == "true" || t == "1" || t == "yes" || t == "on") v = true;
      else if (t == "false" || t == "0" || t == "no" || t == "off") v = false;
      else bad(who, *this, "is '" + text + "', not true or false");
      break;
    }
    case OptionType::text: v = text; break;
    case OptionType::reals: {
      std::vector<double> xs;
      std::string body = text;
      if (!body.empty() && body.front() == '[' && body.back() == ']') body = body.substr(1, body.size() - 2);
      std::stringstream in(body);
      for (std::string item; std::getline(in, item, ',');) {
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) xs.push_back(parse_number(item, who, *this));
      }
      v = std::move(xs);
      break;
    }
  }
  check(v, who);
  return v;
}

std::string options_help(const OptionSpecs& specs) {
  std::string s;
  for (const OptionSpec& o : specs)
    s += "  --" + o.name + " <" + o.allowed() + "> (default " + value_text(o.default_value) + "): " + o.help + "\n";
  return s;
}

const OptionSpec* find_option(const OptionSpecs& specs, const std::string& name) {
  for (const OptionSpec& o : specs)
    if (o.name == name) return &o;
  return nullptr;
}

Options::Options(const OptionSpecs& specs, std::string who) : specs_(specs), who_(std::move(who)) {
  values_.reserve(specs_.size());
  for (const OptionSpec& o : specs_) {
    o.check(o.default_value, who_ + " (default)");
    values_.push_back(o.default_value);
  }
}

Options Options::parse(const OptionSpecs& specs, const std::map<std::string, std::string>& values, std::string who) {
  Options o(specs, std::move(who));
  for (const auto& [name, text] : values) o.set_text(name, text);
  return o;
}

Options Options::from_json(const OptionSpecs& specs, const std::string& json_object, std::string who) {
  Options o(specs, who);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_object);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(who + ": the options are not valid JSON: " + e.what());
  }
  require(j.is_object(), who + ": the options must be a JSON object, got " + j.dump());
  for (const auto& [name, v] : j.items()) {
    const OptionSpec& spec = o.spec(name);
    if (spec.type == OptionType::real && v.is_number()) o.set(name, v.get<double>());
    else if (spec.type == OptionType::integer && v.is_number_integer()) o.set(name, v.get<std::int64_t>());
    else if (spec.type == OptionType::boolean && v.is_boolean()) o.set(name, v.get<bool>());
    else if (spec.type == OptionType::reals && v.is_array()) {
      std::vector<double> xs;
      for (const auto& x : v) {
        if (!x.is_number()) bad(who, spec, "must be a list of numbers, got " + v.dump());
        xs.push_back(x.get<double>());
      }
      o.set(name, xs);
    } else if (v.is_string()) o.set_text(name, v.get<std::string>());
    else bad(who, spec, "has the wrong type: " + v.dump());
  }
  return o;
}

const OptionSpec& Options::spec(const std::string& name) const {
  if (const OptionSpec* s = find_option(specs_, name)) return *s;
  std::string known;
  for (const OptionSpec& o : specs_) known += (known.empty() ? "" : ", ") + o.name;
  throw Error(who_ + ": no option '" + name + "' (" + (known.empty() ? "it takes no options" : "options: " + known) + ")");
}

void Options::set(const std::string& name, const OptionValue& value) {
  const OptionSpec& s = spec(name);
  OptionValue v = value;
  // An integer given for a real option is the same number.
  if (s.type == OptionType::real && std::holds_alternative<std::int64_t>(v)) v = static_cast<double>(std::get<std::int64_t>(v));
  s.check(v, who_);
  values_[static_cast<std::size_t>(&s - specs_.data())] = std::move(v);
}

void Options::set_text(const std::string& name, const std::string& value) { set(name, spec(name).parse(value, who_)); }

const OptionValue& Options::value(const std::string& name) const {
  return values_[static_cast<std::size_t>(&spec(name) - specs_.data())];
}

std::int64_t Options::integer(const std::string& name) const {
  const OptionValue& v = value(name);
  require(std::holds_alternative<std::int64_t>(v), who_ + ": option '" + name + "' is not an integer option");
  return std::get<std::int64_t>(v);
}

double Options::real(const std::string& name) const {
  const OptionValue& v = value(name);
  if (std::holds_alternative<std::int64_t>(v)) return static_cast<double>(std::get<std::int64_t>(v));
  require(std::holds_alternative<double>(v), who_ + ": option '" + name + "' is not a number option");
  return std::get<double>(v);
}

bool Options::boolean(const std::string& name) const {
  const OptionValue& v = value(name);
  require(std::holds_alternative<bool>(v), who_ + ": option '" + name + "' is not a boolean option");
  return std::get<bool>(v);
}

const std::string& Options::text(const std::string& name) const {
  const OptionValue& v = value(name);
  require(std::holds_alternative<std::string>(v), who_ + ": option '" + name + "' is not a text option");
  return std::get<std::string>(v);
}

const std::vector<double>& Options::reals(const std::string& name) const {
  const OptionValue& v = value(name);
  require(std::holds_alternative<std::vector<double>>(v), who_ + ": option '" + name + "' is not a list option");
  return std::get<std::vector<double>>(v);
}

std::string Options::to_json() const {
  nlohmann::json j = nlohmann::json::object();
  for (std::size_t i = 0; i < specs_.size(); ++i)
    std::visit([&](const auto& x) { j[specs_[i].name] = x; }, values_[i]);
  return j.dump();
}

std::string Options::brief() const {
  std::string s;
  for (std::size_t i = 0; i < specs_.size(); ++i)
    if (!(values_[i] == specs_[i].default_value))
      s += (s.empty() ? "" : ", ") + specs_[i].name + " = " + value_text(values_[i]);
  return s;
}

}  // namespace gradhpo::hpo
