#!/usr/bin/env python3
"""Checks the project's size limits on Swift sources: no file over 400 lines and no function
(func, init, deinit, closure-free accessor bodies included) over 80 lines.

    python3 tools/setup/check_sizes.py [FOLDER ...]      (default: Sources)

Prints each file or function over its limit and exits 1 when there is one, else 0.
Function length counts from the declaration's line to its closing brace. Braces inside
string literals and comments are ignored (a rough Swift lexer, enough for this code base).
"""
import os
import re
import sys

MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
DECLARATION = re.compile(r"^\s*(?:@[\w()]+\s+)*(?:(?:public|package|internal|fileprivate|private|static|class|final|"
                         r"override|mutating|nonisolated|convenience|required|@\w+)\s+)*(func\s+[^\s(<]+|init[?!]?|deinit)\b")


def code_only(text):
    """The text with string literals, multi-line strings and comments replaced by spaces."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text.startswith('"""', i):
            j = text.find('"""', i + 3)
            j = n if j < 0 else j + 3
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            out.append(" " * (j + 1 - i)); i = j + 1
        elif text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i)); i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j])); i = j
        else:
            out.append(text[i]); i += 1
    return "".join(out)


def long_functions(path):
    lines = code_only(open(path, encoding="utf-8").read()).split("\n")
    found = []
    for start, line in enumerate(lines):
        match = DECLARATION.match(line)
        if not match:
            continue
        depth, opened = 0, False
        for end in range(start, len(lines)):
            for ch in lines[end]:
                if ch == "{":
                    depth += 1; opened = True
                elif ch == "}":
                    depth -= 1
            if opened and depth <= 0:
                break
            if not opened and end > start and lines[end].strip() == "":
                break  # a protocol requirement: no body
        if opened and end - start + 1 > MAX_FUNCTION_LINES:
            found.append((start + 1, end - start + 1, match.group(1)))
    return found


def main(folders):
    problems = 0
    for folder in folders:
        for root, _, names in sorted(os.walk(folder)):
            for name in sorted(names):
                if not name.endswith(".swift"):
                    continue
                path = os.path.join(root, name)
                count = sum(1 for _ in open(path, encoding="utf-8"))
                if count > MAX_FILE_LINES:
                    print(f"{path}: {count} lines (at most {MAX_FILE_LINES})"); problems += 1
                for line, length, what in long_functions(path):
                    print(f"{path}:{line}: {what} is {length} lines (at most {MAX_FUNCTION_LINES})"); problems += 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["Sources"]))
