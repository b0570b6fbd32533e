// Reading what a run left in its folder: whole files, JSON, and pictures checked to be real.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

namespace gradhpo::testing {

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

inline nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(slurp(path)); }

/// <stem>.png is a PNG with something drawn in it, <stem>.svg an SVG with a path.
inline void check_pictures(const std::string& stem) {
  const std::string png = slurp(stem + ".png"), svg = slurp(stem + ".svg");
  REQUIRE(png.size() > 2000);  // a blank 800×500 PNG compresses to far less
  CHECK(png.compare(0, 8, "\x89PNG\r\n\x1a\n") == 0);
  CHECK(svg.find("<svg") != std::string::npos);
  CHECK(svg.find("<path") != std::string::npos);
}

}  // namespace gradhpo::testing
