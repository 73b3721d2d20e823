#pragma once
// "Did you mean ...?" for misspelt plugin and parameter names.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ood::core {

/// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word`, if it is close enough to be a plausible typo
/// (distance at most max(2, |word| / 3)); ties go to the earlier candidate.
std::optional<std::string> nearest_name(std::string_view word,
                                        const std::vector<std::string>& candidates);

/// " (did you mean 'x'?)" or "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace ood::core
