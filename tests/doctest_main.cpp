// The one main() of every test_<folder> executable (compiled once, linked into each).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
