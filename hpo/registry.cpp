#include "registry.h"

#include <algorithm>
#include <cctype>

namespace gradhpo::hpo {

const char* method_kind_name(MethodKind k) {
  switch (k) {
    case MethodKind::offline: return "offline";
    case MethodKind::online: return "online";
    case MethodKind::search: return "search";
  }
  return "?";
}

namespace {

bool kebab_case(const std::string& s) {
  if (s.empty() || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::islower(c) || std::isdigit(c) || c == '-'; });
}

template <class Entry>
const Entry* find_in(const std::vector<Entry>& entries, const std::string& name) {
  for (const Entry& e : entries)
    if (e.name == name) return &e;
  return nullptr;
}

template <class Entry>
bool remove_from(std::vector<Entry>& entries, const std::string& name) {
  const auto it = std::find_if(entries.begin(), entries.end(), [&](const Entry& e) { return e.name == name; });
  if (it == entries.end()) return false;
  entries.erase(it);
  return true;
}

}  // namespace

Registry& Registry::global() {
  static Registry registry;
  return registry;
}

void Registry::claim(const std::string& name, const OptionSpecs& specs) {
  require(kebab_case(name), "registry: method name '" + name + "' must be kebab-case (lower-case letters, digits, '-')");
  if (contains(name))  // not require(): its message would call kind(), which throws for a new name
    throw Error("registry: a method called '" + name + "' is registered already (" + method_kind_name(kind(name)) + ")");
  for (std::size_t i = 0; i < specs.size(); ++i) {
    require(kebab_case(specs[i].name), "registry: " + name + ": option name '" + specs[i].name + "' must be kebab-case");
    for (std::size_t j = 0; j < i; ++j)
      require(specs[i].name != specs[j].name, "registry: " + name + ": option '" + specs[i].name + "' is declared twice");
  }
  (void)Options(specs, name);  // every default within its own range
}

void Registry::add(OfflineEntry e) {
  claim(e.name, e.options);
  require(static_cast<bool>(e.make), "registry: offline method '" + e.name + "' has no constructor");
  require(e.exactness == Exactness::exact || static_cast<bool>(e.reference),
          "registry: '" + e.name + "' is an approximation and must register the reference implementation of its definition");
  offline_.push_back(std::move(e));
}

void Registry::add(OnlineEntry e) {
  claim(e.name, e.options);
  require(static_cast<bool>(e.make), "registry: online method '" + e.name + "' has no constructor");
  online_.push_back(std::move(e));
}

void Registry::add(SearchEntry e) {
  claim(e.name, e.options);
  require(static_cast<bool>(e.run), "registry: search '" + e.name + "' has nothing to run");
  search_.push_back(std::move(e));
}

bool Registry::remove(const std::string& name) {
  return remove_from(offline_, name) || remove_from(online_, name) || remove_from(search_, name);
}

bool Registry::contains(const std::string& name) const {
  return find_in(offline_, name) || find_in(online_, name) || find_in(search_, name);
}

MethodKind Registry::kind(const std::string& name) const {
  if (find_in(offline_, name)) return MethodKind::offline;
  if (find_in(online_, name)) return MethodKind::online;
  if (find_in(search_, name)) return MethodKind::search;
  std::string known;
  for (MethodKind k : {MethodKind::offline, MethodKind::online, MethodKind::search})
    for (const std::string& n : names(k)) known += (known.empty() ? "" : ", ") + n;
  throw Error("no method called '" + name + "' (registered: " + (known.empty() ? "none; call register_builtin_methods()" : known) + ")");
}

const OfflineEntry& Registry::offline(const std::string& name) const {
  if (const OfflineEntry* e = find_in(offline_, name)) return *e;
  throw Error("'" + name + "' is not an offline hypergradient method" +
              (contains(name) ? std::string(" (it is ") + method_kind_name(kind(name)) + ")" : std::string()) + "; offline methods: " +
              [&] { std::string s; for (const auto& n : names(MethodKind::offline)) s += (s.empty() ? "" : ", ") + n; return s; }());
}

const OnlineEntry& Registry::online(const std::string& name) const {
  if (const OnlineEntry* e = find_in(online_, name)) return *e;
  (void)kind(name);  // unknown: the message lists every name
  throw Error("'" + name + "' is not an online method (it is " + method_kind_name(kind(name)) + ")");
}

const SearchEntry& Registry::search(const std::string& name) const {
  if (const SearchEntry* e = find_in(search_, name)) return *e;
  (void)kind(name);
  throw Error("'" + name + "' is not a search (it is " + method_kind_name(kind(name)) + ")");
}

std::vector<std::string> Registry::names(MethodKind k) const {
  std::vector<std::string> out;
  auto collect = [&](const auto& entries) {
    for (const auto& e : entries) out.push_back(e.name);
  };
  if (k == MethodKind::offline) collect(offline_);
  if (k == MethodKind::online) collect(online_);
  if (k == MethodKind::search) collect(search_);
  return out;
}

const OptionSpecs& Registry::options(const std::string& name) const {
  switch (kind(name)) {
    case MethodKind::offline: return offline(name).options;
    case MethodKind::online: return online(name).options;
    case MethodKind::search: return search(name).options;
  }
  throw Error("registry: unreachable");
}

std::unique_ptr<Method> Registry::make_offline(const std::string& name, const std::map<std::string, std::string>& options) const {
  const OfflineEntry& e = offline(name);
  return e.make(Options::parse(e.options, options, name));
}

std::unique_ptr<Method> Registry::make_offline_json(const std::string& name, const std::string& json_object) const {
  const OfflineEntry& e = offline(name);
  return e.make(Options::from_json(e.options, json_object, name));
}

std::unique_ptr<Method> Registry::make_offline(const std::string& name, const Options& options) const {
  const OfflineEntry& e = offline(name);
  // Options made from another list would be read by the wrong names: rebuild from this entry's.
  Options o(e.options, name);
  for (const OptionSpec& s : options.specs()) o.set(s.name, options.value(s.name));
  return e.make(o);
}

std::unique_ptr<OnlineMethod> Registry::make_online(const std::string& name, const BilevelProblem& problem,
                                                    const OuterOptions& outer,
                                                    const std::map<std::string, std::string>& options) const {
  const OnlineEntry& e = online(name);
  return e.make(problem, outer, Options::parse(e.options, options, name));
}

SearchRun Registry::run_search(const std::string& name, const BilevelProblem& problem, const SearchOptions& common,
                               const std::map<std::string, std::string>& options) const {
  const SearchEntry& e = search(name);
  return e.run(problem, common, Options::parse(e.options, options, name));
}

std::string Registry::help() const {
  std::string s;
  auto section = [&](const char* title, const auto& entries) {
    if (entries.empty()) return;
    s += std::string(title) + ":\n";
    for (const auto& e : entries) {
      s += "  " + e.name + ": " + e.summary + (e.citation.empty() ? "" : " [" + e.citation + "]") + "\n";
      std::string opts = options_help(e.options);
      for (std::size_t at = 0; at < opts.size();) {  // indent the option lines under the method
        const std::size_t end = opts.find('\n', at);
        s += "    " + opts.substr(at, end - at) + "\n";
        at = end == std::string::npos ? opts.size() : end + 1;
      }
    }
  };
  section("offline hypergradient methods (hpo --method NAME)", offline_);
  section("online methods", online_);
  section("searches", search_);
  return s;
}

void register_builtin_methods(Registry& r) {
  if (r.contains("reverse")) return;  // registered already
  register_offline_methods(r);
  register_online_methods(r);
  register_search_methods(r);
}

}  // namespace gradhpo::hpo
