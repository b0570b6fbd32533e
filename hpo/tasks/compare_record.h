// A comparison's row as the run store keeps it (hpo/run_store.h): one section per finished
// method, so a resumed comparison runs only the methods that had not finished and shows the
// recorded rows with the same bits (every double written so that it reads back exactly; NaN and
// infinities as text).
#pragma once

#include <string>

#include "compare.h"

namespace gradhpo::hpo {

/// The run store's section of method `index` ("method/000003": sorted in the run's order).
std::string method_section(std::size_t index);
/// The section of trial `trial` of method `index` ("trials/000003/000012").
std::string trial_section(std::size_t index, std::size_t trial);
/// The prefix of method `index`'s trial sections ("trials/000003/").
std::string trial_prefix(std::size_t index);
/// A journaled trial as JSON text, and back.
std::string encode_trial(const JournalEntry& entry);
JournalEntry decode_trial(const std::string& text, const std::string& where);
/// Every field of a row, θ included, as JSON text.
std::string encode_method_result(const MethodResult& row);
/// The row back; `where` names the source in messages (a malformed record is refused).
MethodResult decode_method_result(const std::string& text, const std::string& where);
/// A whole comparison — what it ran (problem, budget, equalise, ...), its calibration and every
/// row — as JSON text, and back with the same bits (what the pooled compare_seeds shares).
std::string encode_comparison(const Comparison& c);
Comparison decode_comparison(const std::string& text, const std::string& where);

}  // namespace gradhpo::hpo
