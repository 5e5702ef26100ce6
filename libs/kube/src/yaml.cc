#include "strata/kube/yaml.h"

#include <yaml.h>

#include <charconv>
#include <memory>
#include <string>
#include <vector>

namespace strata::kube {
namespace {

nlohmann::json PlainScalar(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  int64_t i = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (ec == std::errc() && p == s.data() + s.size()) return i;
  // Core schema floats: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? (no .inf/.nan: JSON
  // has none). from_chars alone would also take "inf", "nan" and hex forms.
  const bool float_chars = s.find_first_not_of("0123456789.eE+-") == std::string::npos &&
                           s.find_first_of("0123456789") != std::string::npos &&
                           s.find_first_of(".eE") != std::string::npos;
  if (float_chars) {
    const char* begin = s.data() + (s[0] == '+' ? 1 : 0);
    double d = 0;
    auto [q, fec] = std::from_chars(begin, s.data() + s.size(), d);
    if (fec == std::errc() && q == s.data() + s.size()) return d;
  }
  return s;
}

}  // namespace

Result<nlohmann::json> YamlToJson(std::string_view text) {
  yaml_parser_t parser;
  if (!yaml_parser_initialize(&parser)) return InternalError("yaml: out of memory");
  std::unique_ptr<yaml_parser_t, void (*)(yaml_parser_t*)> guard(&parser, yaml_parser_delete);
  yaml_parser_set_input_string(&parser, reinterpret_cast<const unsigned char*>(text.data()),
                               text.size());

  // Open containers; a mapping also remembers the key awaiting its value.
  struct Frame {
    nlohmann::json value;
    std::optional<std::string> pending_key;
  };
  std::vector<Frame> stack;
  std::optional<nlohmann::json> root;

  auto emit = [&](nlohmann::json v) -> Status {
    if (stack.empty()) {
      root = std::move(v);
      return Status::Ok();
    }
    Frame& top = stack.back();
    if (top.value.is_array()) {
      top.value.push_back(std::move(v));
    } else if (top.pending_key) {
      top.value[*top.pending_key] = std::move(v);
      top.pending_key.reset();
    } else if (v.is_string()) {
      top.pending_key = v.get<std::string>();
    } else if (v.is_primitive()) {
      top.pending_key = v.dump();
    } else {
      return InvalidArgumentError("yaml: complex mapping keys are not supported");
    }
    return Status::Ok();
  };

  while (!root) {
    yaml_event_t event;
    if (!yaml_parser_parse(&parser, &event)) {
      return InvalidArgumentError("yaml: line " + std::to_string(parser.problem_mark.line + 1) +
                                  ": " + (parser.problem ? parser.problem : "syntax error"));
    }
    std::unique_ptr<yaml_event_t, void (*)(yaml_event_t*)> ev(&event, yaml_event_delete);
    Status st;
    switch (event.type) {
      case YAML_STREAM_END_EVENT:
        return nlohmann::json(nullptr);  // empty document
      case YAML_ALIAS_EVENT:
        return InvalidArgumentError("yaml: aliases are not supported");
      case YAML_SCALAR_EVENT: {
        std::string s(reinterpret_cast<const char*>(event.data.scalar.value),
                      event.data.scalar.length);
        const bool plain = event.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        // Mapping keys stay strings whatever they look like.
        const bool is_key =
            !stack.empty() && stack.back().value.is_object() && !stack.back().pending_key;
        st = emit(plain && !is_key ? PlainScalar(s) : nlohmann::json(s));
        break;
      }
      case YAML_SEQUENCE_START_EVENT:
        stack.push_back({nlohmann::json::array(), std::nullopt});
        break;
      case YAML_MAPPING_START_EVENT:
        stack.push_back({nlohmann::json::object(), std::nullopt});
        break;
      case YAML_SEQUENCE_END_EVENT:
      case YAML_MAPPING_END_EVENT: {
        nlohmann::json done = std::move(stack.back().value);
        stack.pop_back();
        st = emit(std::move(done));
        break;
      }
      default:
        break;
    }
    if (!st.ok()) return st;
  }
  return std::move(*root);
}

}  // namespace strata::kube
