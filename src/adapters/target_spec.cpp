#include "adapters/target_spec.h"

#include <algorithm>
#include <bitset>
#include <memory>
#include <string_view>

#include <fmt/ranges.h>

#include "core/error.h"

namespace peft::adapters {

namespace {

// ---- A regular expression as a Thompson automaton (see target_spec.h for the syntax) ----

constexpr std::size_t kMaxPattern = 1024;   // characters
constexpr int kMaxDepth = 64;               // nested groups
constexpr std::size_t kMaxProgram = 20000;  // automaton steps, counted repeats expanded
constexpr std::size_t kMaxWork = 200000;    // compile work (repeats of empty groups emit nothing)
constexpr int kMaxCount = 1000;             // n and m of {n,m}

using ByteSet = std::bitset<256>;

struct Node {
  enum Kind { Empty, Set, Concat, Alt, Repeat, Bol, Eol } kind = Empty;
  std::size_t set = 0;      // Set: index into the parser's set pool
  std::vector<Node> kids;   // Concat, Alt; Repeat: one
  int min = 0, max = -1;    // Repeat; -1 = no upper bound
};

class RegexError : public std::exception {
 public:
  explicit RegexError(std::string what) : what_(std::move(what)) {}
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::string what_;
};

ByteSet range(unsigned char lo, unsigned char hi) {
  ByteSet s;
  for (unsigned c = lo; c <= hi; ++c) s.set(c);
  return s;
}

ByteSet class_escape(char c) {  // \d \w \s and their complements
  ByteSet d = range('0', '9');
  ByteSet w = d | range('a', 'z') | range('A', 'Z');
  w.set('_');
  ByteSet s;
  for (char ch : std::string_view(" \t\n\r\f\v")) s.set(static_cast<unsigned char>(ch));
  switch (c) {
    case 'd': return d;
    case 'D': return ~d;
    case 'w': return w;
    case 'W': return ~w;
    case 's': return s;
    default: return ~s;  // 'S'
  }
}

/// Recursive descent over the pattern; the depth is bounded by kMaxDepth, not by the input.
class Parser {
 public:
  explicit Parser(std::string_view p) : p_(p) {}

  Node parse() {
    Node n = alternation();
    if (i_ < p_.size()) fail("unbalanced parenthesis");  // a ')' with no '('
    return n;
  }
  std::vector<ByteSet> take_sets() { return std::move(sets_); }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw RegexError(fmt::format("{} at position {}", what, i_)); }
  bool at(char c) const { return i_ < p_.size() && p_[i_] == c; }

  std::size_t add_set(const ByteSet& s) {
    sets_.push_back(s);
    return sets_.size() - 1;
  }
  Node set_node(const ByteSet& s) {
    Node n;
    n.kind = Node::Set;
    n.set = add_set(s);
    return n;
  }

  Node alternation() {
    Node first = concat();
    if (!at('|')) return first;
    Node alt;
    alt.kind = Node::Alt;
    alt.kids.push_back(std::move(first));
    while (at('|')) {
      ++i_;
      alt.kids.push_back(concat());
    }
    return alt;
  }

  Node concat() {
    Node c;
    c.kind = Node::Concat;
    while (i_ < p_.size() && !at('|') && !at(')')) {
      Node a = atom();
      quantifiers(a);
      c.kids.push_back(std::move(a));
    }
    return c;
  }

  /// {n}, {n,}, {n,m}, {,m} at i_: the bounds, else false (then '{' is a literal, as in Python).
  bool counted(std::size_t& end, int& lo, int& hi) const {
    std::size_t j = i_ + 1;
    auto number = [&](int& out) {
      std::size_t start = j;
      long v = 0;
      while (j < p_.size() && p_[j] >= '0' && p_[j] <= '9') {
        v = std::min<long>(v * 10 + (p_[j] - '0'), 1L << 30);
        ++j;
      }
      out = static_cast<int>(v);
      return j > start;
    };
    int a = 0, b = -1;
    const bool has_a = number(a);
    if (j < p_.size() && p_[j] == '}') {
      if (!has_a) return false;
      b = a;
    } else if (j < p_.size() && p_[j] == ',') {
      ++j;
      if (!number(b)) b = -1;
      if (j >= p_.size() || p_[j] != '}') return false;
      if (!has_a) a = 0;
    } else {
      return false;
    }
    end = j + 1;
    lo = a;
    hi = b;
    return true;
  }

  bool quantifier_here(int& lo, int& hi, std::size_t& end) const {
    if (i_ >= p_.size()) return false;
    switch (p_[i_]) {
      case '*': lo = 0, hi = -1, end = i_ + 1; return true;
      case '+': lo = 1, hi = -1, end = i_ + 1; return true;
      case '?': lo = 0, hi = 1, end = i_ + 1; return true;
      case '{': return counted(end, lo, hi);
      default: return false;
    }
  }

  void quantifiers(Node& a) {
    int lo = 0, hi = 0;
    std::size_t end = 0;
    if (!quantifier_here(lo, hi, end)) return;
    if (a.kind == Node::Bol || a.kind == Node::Eol) fail("nothing to repeat");
    if (lo > kMaxCount || hi > kMaxCount) fail(fmt::format("a repeat count above {}", kMaxCount));
    if (hi >= 0 && hi < lo) fail("min repeat greater than max repeat");
    i_ = end;
    if (at('?')) ++i_;  // lazy: the same strings match
    if (quantifier_here(lo, hi, end)) fail("multiple repeat");
    Node r;
    r.kind = Node::Repeat;
    r.min = lo;
    r.max = hi;
    r.kids.push_back(std::move(a));
    a = std::move(r);
  }

  Node atom() {
    const char c = p_[i_];
    switch (c) {
      case '(': {
        ++i_;
        if (at('?')) {
          if (i_ + 1 < p_.size() && p_[i_ + 1] == ':') i_ += 2;
          else fail("groups of the form (?...) other than (?:...) are not supported");
        }
        if (++depth_ > kMaxDepth) fail(fmt::format("groups nested deeper than {}", kMaxDepth));
        Node g = alternation();
        if (!at(')')) fail("missing ), unterminated subpattern");
        ++i_;
        --depth_;
        return g;
      }
      case '[': return char_class();
      case '.': {
        ++i_;
        ByteSet s;
        s.set();
        s.reset('\n');
        return set_node(s);
      }
      case '^': ++i_; { Node n; n.kind = Node::Bol; return n; }
      case '$': ++i_; { Node n; n.kind = Node::Eol; return n; }
      case '\\': return set_node(escape(false));
      case '*':
      case '+':
      case '?': fail("nothing to repeat");
      case '{': {
        int lo = 0, hi = 0;
        std::size_t end = 0;
        if (counted(end, lo, hi)) fail("nothing to repeat");
        break;
      }
      default: break;
    }
    ++i_;
    ByteSet s;
    s.set(static_cast<unsigned char>(c));
    return set_node(s);
  }

  /// After a backslash at i_: the characters it stands for. In a class, \b would be a backspace
  /// in Python; it is refused with the rest.
  ByteSet escape(bool in_class) {
    ++i_;
    if (i_ >= p_.size()) fail("bad escape (end of pattern)");
    const char c = p_[i_++];
    ByteSet s;
    switch (c) {
      case 'd': case 'D': case 'w': case 'W': case 's': case 'S': return class_escape(c);
      case 'n': s.set('\n'); return s;
      case 't': s.set('\t'); return s;
      case 'r': s.set('\r'); return s;
      case 'f': s.set('\f'); return s;
      case 'v': s.set('\v'); return s;
      default: break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (c >= '0' && c <= '9') {
      --i_;
      fail(in_class ? "octal escapes are not supported" : "back-references are not supported");
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      --i_;
      fail(fmt::format("the escape \\{} is not supported", c));
    }
    s.set(u);  // \. \- \\ \( …: the character itself
    return s;
  }

  Node char_class() {
    const std::size_t open = i_;
    ++i_;
    bool negate = false;
    if (at('^')) {
      negate = true;
      ++i_;
    }
    ByteSet s;
    bool first = true;
    for (;;) {
      if (i_ >= p_.size()) {
        i_ = open;
        fail("unterminated character set");
      }
      if (at(']') && !first) {
        ++i_;
        break;
      }
      first = false;
      // One member: an escape or a character, and perhaps a range lo-hi.
      bool single = true;
      unsigned char lo = 0;
      ByteSet member;
      if (at('\\')) {
        member = escape(true);
        single = member.count() == 1 && !(p_[i_ - 1] == 'd' || p_[i_ - 1] == 'w' || p_[i_ - 1] == 's');
        if (single)
          for (unsigned b = 0; b < 256; ++b)
            if (member.test(b)) lo = static_cast<unsigned char>(b);
      } else {
        lo = static_cast<unsigned char>(p_[i_++]);
        member.set(lo);
      }
      if (single && at('-') && i_ + 1 < p_.size() && p_[i_ + 1] != ']') {
        ++i_;
        unsigned char hi = 0;
        if (at('\\')) {
          ByteSet h = escape(true);
          const char e = p_[i_ - 1];
          if (h.count() != 1 || e == 'd' || e == 'w' || e == 's') fail("bad character range");
          for (unsigned b = 0; b < 256; ++b)
            if (h.test(b)) hi = static_cast<unsigned char>(b);
        } else {
          hi = static_cast<unsigned char>(p_[i_++]);
        }
        if (hi < lo) fail("bad character range");
        member = range(lo, hi);
      }
      s |= member;
    }
    if (negate) s = ~s;
    return set_node(s);
  }

  std::string_view p_;
  std::size_t i_ = 0;
  int depth_ = 0;
  std::vector<ByteSet> sets_;
};

struct Inst {
  enum Op { Set, Split, Jmp, Bol, Eol, Match } op;
  std::size_t arg = 0;  // Set: the set; Split: the second branch; Jmp: the target
};

class Compiler {
 public:
  std::vector<Inst> compile(const Node& root) {
    emit(root);
    push({Inst::Match, 0});
    return std::move(prog_);
  }

 private:
  std::size_t push(Inst in) {
    if (prog_.size() >= kMaxProgram) throw RegexError(fmt::format("the pattern expands to more than {} steps", kMaxProgram));
    prog_.push_back(in);
    return prog_.size() - 1;
  }
  // Depth bounded by the parse tree's (kMaxDepth groups).
  void emit(const Node& n) {
    if (++work_ > kMaxWork) throw RegexError(fmt::format("the pattern expands to more than {} steps", kMaxProgram));
    switch (n.kind) {
      case Node::Empty: break;
      case Node::Set: push({Inst::Set, n.set}); break;
      case Node::Bol: push({Inst::Bol, 0}); break;
      case Node::Eol: push({Inst::Eol, 0}); break;
      case Node::Concat:
        for (const auto& k : n.kids) emit(k);
        break;
      case Node::Alt: {
        std::vector<std::size_t> to_end;
        for (std::size_t k = 0; k < n.kids.size(); ++k) {
          if (k + 1 == n.kids.size()) {
            emit(n.kids[k]);
            break;
          }
          const std::size_t split = push({Inst::Split, 0});
          emit(n.kids[k]);
          to_end.push_back(push({Inst::Jmp, 0}));
          prog_[split].arg = prog_.size();  // the next alternative
        }
        for (auto j : to_end) prog_[j].arg = prog_.size();
        break;
      }
      case Node::Repeat: {
        const Node& k = n.kids.front();
        for (int r = 0; r < n.min; ++r) emit(k);
        if (n.max < 0) {
          const std::size_t split = push({Inst::Split, 0});
          emit(k);
          push({Inst::Jmp, split});
          prog_[split].arg = prog_.size();
        } else {
          std::vector<std::size_t> skips;
          for (int r = n.min; r < n.max; ++r) {
            skips.push_back(push({Inst::Split, 0}));
            emit(k);
          }
          for (auto s : skips) prog_[s].arg = prog_.size();
        }
        break;
      }
    }
  }

  std::vector<Inst> prog_;
  std::size_t work_ = 0;
};

struct Program {
  std::vector<Inst> prog;
  std::vector<ByteSet> sets;
};

Program compile(const std::string& pattern) {
  if (pattern.size() > kMaxPattern) throw RegexError(fmt::format("longer than {} characters", kMaxPattern));
  Parser parser(pattern);
  Node root = parser.parse();
  Program p;
  p.prog = Compiler().compile(root);
  p.sets = parser.take_sets();
  return p;
}

/// Runs the automaton over `text` with every live state at once (Thompson's simulation): each
/// state is visited at most once per character, and the closure uses a stack of its own.
bool run(const Program& p, std::string_view text) {
  const std::size_t n_states = p.prog.size();
  std::vector<std::size_t> mark(n_states, 0), stack;
  std::vector<std::size_t> cur, next;
  std::size_t gen = 0;
  auto add = [&](std::vector<std::size_t>& list, std::size_t pc, std::size_t pos) {
    stack.push_back(pc);
    while (!stack.empty()) {
      const std::size_t s = stack.back();
      stack.pop_back();
      if (mark[s] == gen) continue;
      mark[s] = gen;
      const Inst& in = p.prog[s];
      switch (in.op) {
        case Inst::Jmp: stack.push_back(in.arg); break;
        case Inst::Split:
          stack.push_back(in.arg);
          stack.push_back(s + 1);
          break;
        case Inst::Bol:
          if (pos == 0) stack.push_back(s + 1);
          break;
        case Inst::Eol:
          if (pos == text.size()) stack.push_back(s + 1);
          break;
        case Inst::Set:
        case Inst::Match: list.push_back(s); break;
      }
    }
  };
  ++gen;
  add(cur, 0, 0);
  for (std::size_t pos = 0; pos < text.size() && !cur.empty(); ++pos) {
    ++gen;
    next.clear();
    const auto c = static_cast<unsigned char>(text[pos]);
    for (std::size_t s : cur)
      if (p.prog[s].op == Inst::Set && p.sets[p.prog[s].arg].test(c)) add(next, s + 1, pos + 1);
    cur.swap(next);
  }
  return std::any_of(cur.begin(), cur.end(), [&](std::size_t s) { return p.prog[s].op == Inst::Match; });
}

std::string shown(const std::string& s) { return s.size() <= 80 ? s : s.substr(0, 77) + "..."; }

}  // namespace

bool regex_full_match(const std::string& pattern, const std::string& text) {
  Program p;
  try {
    p = compile(pattern);
  } catch (const RegexError& e) {
    throw_input("invalid regex \"{}\": {}", shown(pattern), e.what());
  }
  return run(p, text);
}

TargetSpec TargetSpec::from_names(std::vector<std::string> names, std::vector<int64_t> layers) {
  TargetSpec s;
  s.kind = Kind::Names;
  s.names = std::move(names);
  s.layers = std::move(layers);
  return s;
}

TargetSpec TargetSpec::from_regex(std::string regex) {
  TargetSpec s;
  s.kind = Kind::Regex;
  s.regex = std::move(regex);
  return s;
}

TargetSpec TargetSpec::all_linear(std::vector<int64_t> layers) {
  TargetSpec s;
  s.kind = Kind::AllLinear;
  s.layers = std::move(layers);
  return s;
}

TargetSpec TargetSpec::from_list(const std::vector<std::string>& items, std::vector<int64_t> layers) {
  if (items.size() == 1 && items[0] == "all-linear") return all_linear(std::move(layers));
  return from_names(items, std::move(layers));
}

std::string TargetSpec::describe() const {
  std::string s;
  switch (kind) {
    case Kind::Names: s = fmt::format("{}", fmt::join(names, ", ")); break;
    case Kind::Regex: s = fmt::format("regex \"{}\"", shown(regex)); break;
    case Kind::AllLinear: s = "all-linear"; break;
  }
  if (!layers.empty()) s += fmt::format(" (layers {})", fmt::join(layers, ", "));
  return s;
}

void TargetSpec::validate() const {
  switch (kind) {
    case Kind::Names:
      if (names.empty()) throw_input("target modules: the list is empty");
      for (const auto& n : names)
        if (n.empty()) throw_input("target modules: empty name in [{}]", fmt::join(names, ", "));
      break;
    case Kind::Regex:
      if (!layers.empty()) throw_input("target modules: layers_to_transform cannot be used with a regex (as in PEFT)");
      try {
        compile(regex);
      } catch (const RegexError& e) {
        throw_input("target modules: invalid regex \"{}\": {}", shown(regex), e.what());
      }
      break;
    case Kind::AllLinear: break;
  }
  for (int64_t l : layers)
    if (l < 0) throw_input("layers_to_transform: negative layer index {}", l);
}

bool TargetSpec::matches(const std::string& path, int64_t layer) const {
  if (!layers.empty() && std::find(layers.begin(), layers.end(), layer) == layers.end()) return false;
  switch (kind) {
    case Kind::Names:
      return std::any_of(names.begin(), names.end(), [&](const std::string& n) {
        return path == n || (path.size() > n.size() && path.ends_with("." + n));
      });
    case Kind::Regex:
      try {
        return run(compile(regex), path);
      } catch (const RegexError&) {
        return false;
      }
    case Kind::AllLinear: return true;
  }
  return false;
}

const std::vector<std::string>& encoder_linear_names() { return encoder_linear_names(model::Family::DistilBert); }

const std::vector<std::string>& encoder_linear_names(model::Family family) {
  static const std::vector<std::string> distilbert = {"q_lin", "k_lin", "v_lin", "out_lin", "lin1", "lin2"};
  static const std::vector<std::string> bert = {"query", "key", "value", "attention.output.dense", "intermediate.dense", "output.dense"};
  return family == model::Family::Bert ? bert : distilbert;
}

}  // namespace peft::adapters
