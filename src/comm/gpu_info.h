#pragma once
// What CUDA says about a device, compiled against the CUDA runtime only where the build has it
// (PEFT_WITH_CUDA); this file is the one dispatch point.
#include <string>

namespace peft::comm {

/// The PCI bus id ("0000:3b:00.0") of CUDA device `index` as this process sees it (after
/// CUDA_VISIBLE_DEVICES). Throws when the build has no CUDA or CUDA fails.
std::string pci_bus_id(int index);

}  // namespace peft::comm
