// A method's options as the commands take them: repeated "key=value" texts, handed to the
// registry as a key–value map (hpo/options.h validates names and values, naming the method).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace gradhpo::tools {

/// {"policy=checkpoint", "checkpoint-every=10"} → {{"policy", "checkpoint"}, ...}; throws Error
/// naming `flag` for an item without '=' or with an empty key.
std::map<std::string, std::string> option_texts(const std::vector<std::string>& items, const std::string& flag);

/// The registry's offline methods, each with its summary and its options (--option key=value),
/// for the footer of a command that takes --method NAME.
std::string offline_methods_help();

}  // namespace gradhpo::tools
