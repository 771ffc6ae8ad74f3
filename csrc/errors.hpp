// Errors of the C++ core other than a bad input line (binparse.hpp's FormatError): each
// carries the code the C interface returns and the one-line message it gives.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

namespace cf {

enum class Code { Format = 1, Io = 2, Argument = 3, Memory = 4, Model = 5, Unsupported = 6, Runtime = 7 };

class Error : public std::runtime_error {
 public:
  Error(Code code_, const std::string& message) : std::runtime_error(message), code(code_) {}
  Code code;
};

// Python's repr() of a str, for messages that must read as the Python package's: quoted
// in ' (in " when the text holds a ' and no "), backslash, quote, \t, \n, \r escaped and
// other control characters as \xNN.
std::string py_repr(const std::string& s);

// "a,b,c" from {"a", "b", "c"} (sep ","), and a path's last part: for messages.
std::string join(const std::vector<std::string>& parts, const char* sep);
std::string basename(const std::string& path);

}  // namespace cf
