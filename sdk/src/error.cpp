#include "ood/error.hpp"

namespace ood {

// Out-of-line destructors are the key functions: they make libood-sdk the single
// home of these types' vtables and typeinfo.
Error::Error(const std::string& message) : std::runtime_error(message) {}
Error::~Error() = default;
InvalidArgument::InvalidArgument(const std::string& message) : Error(message) {}
InvalidArgument::~InvalidArgument() = default;
FileError::FileError(const std::string& message) : Error(message) {}
FileError::~FileError() = default;
ShapeError::ShapeError(const std::string& message) : Error(message) {}
ShapeError::~ShapeError() = default;
StateError::StateError(const std::string& message) : Error(message) {}
StateError::~StateError() = default;
NotSupported::NotSupported(const std::string& message) : Error(message) {}
NotSupported::~NotSupported() = default;

}  // namespace ood
