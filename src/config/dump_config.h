#pragma once
// `peft-sweep SWEEP.toml --dump-config`: a parsed sweep written back as TOML with every
// setting spelled out (defaults included), in the form the parser reads. Parsing the dump
// gives a SweepSpec that expands to the same trials (same ids) as the original.
#include <string>

#include "config/sweep_spec.h"

namespace peft {

/// The sweep as a TOML document: [sweep], [model], [train], [method], one
/// [methods.<name>] per grid method and one [datasets.<name>] per grid dataset, with every
/// key the parser accepts there, then [grid]. Tables the grid does not use are left out.
std::string dump_config(const SweepSpec& spec);

}  // namespace peft
