// peft-tool: utilities others script (tokenize, forward, inspect, predict, quantize).
#include <iostream>
#include "peft/version.h"
int main(int argc, char** argv) { std::cout << "peft-tool " << PEFT_VERSION << "\n"; return 0; }
