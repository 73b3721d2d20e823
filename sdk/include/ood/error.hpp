#pragma once
// Exception types shared by the host and every plugin.
//
// All of them derive from ood::Error, so the host can report any failure of a plugin
// with one message and a non-zero exit code instead of crashing. Their key functions
// (the destructors) are defined in libood-sdk, which makes the typeinfo unique.
#include <stdexcept>
#include <string>

#include "ood/export.hpp"

namespace ood {

/// Base of every error raised by ood or its plugins. The message is meant for users:
/// it names what was wrong and where (file, JSON pointer, plugin, parameter).
class OOD_SDK_API Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message);
  ~Error() override;
};

/// Bad user input: a parameter value, a pipeline description, a command line, a
/// weights file that does not fit the declared model. The host exits with code 2 for
/// it (1 for every other ood::Error), so raise it only for what the user wrote.
class OOD_SDK_API InvalidArgument : public Error {
 public:
  explicit InvalidArgument(const std::string& message);
  ~InvalidArgument() override;
};

/// A file that cannot be read or has the wrong format (dataset files, weights, archives).
class OOD_SDK_API FileError : public Error {
 public:
  explicit FileError(const std::string& message);
  ~FileError() override;
};

/// A tensor of the wrong shape, dtype or content handed to a component.
class OOD_SDK_API ShapeError : public Error {
 public:
  explicit ShapeError(const std::string& message);
  ~ShapeError() override;
};

/// A detector used before it was fitted, or a method asked for something it cannot do.
class OOD_SDK_API StateError : public Error {
 public:
  explicit StateError(const std::string& message);
  ~StateError() override;
};

/// A path of the program that exists in the interface but is not implemented (yet)
/// by this component. Raised instead of silently doing something else.
class OOD_SDK_API NotSupported : public Error {
 public:
  explicit NotSupported(const std::string& message);
  ~NotSupported() override;
};

}  // namespace ood
