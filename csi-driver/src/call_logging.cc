#include "call_logging.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/text_format.h>

#include <memory>
#include <vector>

#include "csi/v1/csi.pb.h"

namespace strata::csi {

void StripSecrets(google::protobuf::Message* message) {
  const auto* reflection = message->GetReflection();
  std::vector<const google::protobuf::FieldDescriptor*> fields;
  reflection->ListFields(*message, &fields);
  for (const auto* field : fields) {
    if (field->options().GetExtension(::csi::v1::csi_secret)) {
      reflection->ClearField(message, field);
      continue;
    }
    if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
        StripSecrets(reflection->MutableRepeatedMessage(message, field, i));
      }
    } else {
      StripSecrets(reflection->MutableMessage(message, field));
    }
  }
}

std::string RedactedText(const google::protobuf::Message& request) {
  std::unique_ptr<google::protobuf::Message> copy(request.New());
  copy->CopyFrom(request);
  StripSecrets(copy.get());
  return copy->ShortDebugString();
}

}  // namespace strata::csi
