#include "strata/kube/labels.h"

#include <algorithm>
#include <cctype>

namespace strata::kube {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool ValidKey(std::string_view k) {
  if (k.empty() || k.size() > 253) return false;
  return std::all_of(k.begin(), k.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
           c == '/';
  });
}

// Splits at top-level commas (not inside "in (a,b)").
std::vector<std::string_view> SplitTerms(std::string_view text) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '(') ++depth;
    if (text[i] == ')') --depth;
    if (text[i] == ',' && depth == 0) {
      out.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  out.push_back(text.substr(start));
  return out;
}

Result<std::vector<std::string>> ParseSet(std::string_view s, std::string_view term) {
  s = Trim(s);
  if (s.size() < 2 || s.front() != '(' || s.back() != ')') {
    return InvalidArgumentError("label selector: '" + std::string(term) +
                                "': expected a set of values in parentheses");
  }
  std::vector<std::string> values;
  s = s.substr(1, s.size() - 2);
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) comma = s.size();
    auto v = Trim(s.substr(start, comma - start));
    if (!v.empty()) values.emplace_back(v);
    start = comma + 1;
  }
  return values;
}

}  // namespace

bool LabelSelector::Matches(const std::map<std::string, std::string>& labels) const {
  for (const auto& r : requirements_) {
    auto it = labels.find(r.key);
    const bool has = it != labels.end();
    auto in = [&] {
      return has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    };
    switch (r.op) {
      case Op::kEquals:
      case Op::kIn:
        if (!in()) return false;
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        // As the API server: a missing label satisfies "!=" and "notin".
        if (in()) return false;
        break;
      case Op::kExists:
        if (!has) return false;
        break;
      case Op::kDoesNotExist:
        if (has) return false;
        break;
    }
  }
  return true;
}

bool LabelSelector::MatchesObject(const Json& object) const { return Matches(LabelsOf(object)); }

std::map<std::string, std::string> LabelsOf(const Json& object) {
  std::map<std::string, std::string> out;
  if (!object.is_object()) return out;
  auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return out;
  auto l = m->find("labels");
  if (l == m->end() || !l->is_object()) return out;
  for (auto it = l->begin(); it != l->end(); ++it) {
    if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

Result<LabelSelector> ParseLabelSelector(std::string_view text) {
  std::vector<LabelSelector::Requirement> reqs;
  if (Trim(text).empty()) return LabelSelector();
  for (std::string_view raw : SplitTerms(text)) {
    const std::string_view term = Trim(raw);
    auto bad = [&](const std::string& why) {
      return InvalidArgumentError("label selector: '" + std::string(term) + "': " + why);
    };
    if (term.empty()) return bad("empty term");
    LabelSelector::Requirement r;
    if (term.front() == '!') {
      r.key = std::string(Trim(term.substr(1)));
      r.op = LabelSelector::Op::kDoesNotExist;
    } else if (auto p = term.find("!="); p != std::string_view::npos) {
      r.key = std::string(Trim(term.substr(0, p)));
      r.op = LabelSelector::Op::kNotEquals;
      r.values = {std::string(Trim(term.substr(p + 2)))};
    } else if (auto q = term.find('='); q != std::string_view::npos) {
      r.key = std::string(Trim(term.substr(0, q)));
      r.op = LabelSelector::Op::kEquals;
      size_t v = q + 1;
      if (v < term.size() && term[v] == '=') ++v;
      r.values = {std::string(Trim(term.substr(v)))};
    } else if (auto sp = term.find(' '); sp != std::string_view::npos) {
      r.key = std::string(term.substr(0, sp));
      std::string_view rest = Trim(term.substr(sp));
      if (rest.starts_with("notin")) {
        r.op = LabelSelector::Op::kNotIn;
        rest.remove_prefix(5);
      } else if (rest.starts_with("in")) {
        r.op = LabelSelector::Op::kIn;
        rest.remove_prefix(2);
      } else {
        return bad("expected =, !=, in or notin after the key");
      }
      auto values = ParseSet(rest, term);
      if (!values.ok()) return values.status();
      if (values->empty()) return bad("a set needs at least one value");
      r.values = std::move(*values);
    } else {
      r.key = std::string(term);
      r.op = LabelSelector::Op::kExists;
    }
    if (!ValidKey(r.key)) return bad("'" + r.key + "' is not a valid label key");
    reqs.push_back(std::move(r));
  }
  return LabelSelector(std::move(reqs));
}

Result<LabelSelector> LabelSelectorFromJson(const Json& selector, std::string_view field) {
  const std::string f(field);
  if (selector.is_null()) return LabelSelector();
  if (!selector.is_object()) return InvalidArgumentError(f + ": must be an object");
  std::vector<LabelSelector::Requirement> reqs;
  if (auto ml = selector.find("matchLabels"); ml != selector.end() && !ml->is_null()) {
    if (!ml->is_object()) return InvalidArgumentError(f + ".matchLabels: must be an object");
    for (auto it = ml->begin(); it != ml->end(); ++it) {
      if (!it.value().is_string()) {
        return InvalidArgumentError(f + ".matchLabels." + it.key() + ": must be a string");
      }
      reqs.push_back({it.key(), LabelSelector::Op::kEquals, {it.value().get<std::string>()}});
    }
  }
  if (auto me = selector.find("matchExpressions"); me != selector.end() && !me->is_null()) {
    if (!me->is_array()) return InvalidArgumentError(f + ".matchExpressions: must be a list");
    for (size_t i = 0; i < me->size(); ++i) {
      const Json& e = (*me)[i];
      const std::string at = f + ".matchExpressions[" + std::to_string(i) + "]";
      if (!e.is_object()) return InvalidArgumentError(at + ": must be an object");
      if (!e.contains("key") || !e["key"].is_string() || e["key"].get<std::string>().empty()) {
        return InvalidArgumentError(at + ".key: required");
      }
      if (!e.contains("operator") || !e["operator"].is_string()) {
        return InvalidArgumentError(at + ".operator: required");
      }
      LabelSelector::Requirement r;
      r.key = e["key"].get<std::string>();
      const std::string op = e["operator"].get<std::string>();
      if (e.contains("values") && !e["values"].is_null()) {
        if (!e["values"].is_array()) return InvalidArgumentError(at + ".values: must be a list");
        for (const auto& v : e["values"]) {
          if (!v.is_string()) return InvalidArgumentError(at + ".values: must be strings");
          r.values.push_back(v.get<std::string>());
        }
      }
      if (op == "In" || op == "NotIn") {
        r.op = op == "In" ? LabelSelector::Op::kIn : LabelSelector::Op::kNotIn;
        if (r.values.empty()) {
          return InvalidArgumentError(at + ".values: required for operator " + op);
        }
      } else if (op == "Exists" || op == "DoesNotExist") {
        r.op = op == "Exists" ? LabelSelector::Op::kExists : LabelSelector::Op::kDoesNotExist;
        if (!r.values.empty()) {
          return InvalidArgumentError(at + ".values: must be empty for operator " + op);
        }
      } else {
        return InvalidArgumentError(at + ".operator: \"" + op +
                                    "\" is not one of In, NotIn, Exists, DoesNotExist");
      }
      reqs.push_back(std::move(r));
    }
  }
  return LabelSelector(std::move(reqs));
}

}  // namespace strata::kube
