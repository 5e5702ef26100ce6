#!/usr/bin/env bash
# Every shared library of every installed Strata binary comes from a package the Dockerfile's
# runtime stage installs (or from a dependency of one, or from the base image), so that no
# binary of the image dies with "error while loading shared libraries".
#
# Usage: tests/image/runtime_libs_test.sh DOCKERFILE BINARY...
#
#   1. The packages of the stage "FROM ... AS runtime" (up to the next FROM): the non-option
#      words after `apt-get install` (or `apt install`) of its RUN lines, continuations joined.
#   2. The packages the image will have: those and the base image's, with their Depends and
#      PreDepends recursively (apt-cache depends --recurse; of alternatives "a | b" and of the
#      providers of a virtual package: one already chosen, else the one this bookworm host has
#      installed, as apt chose here (usr-is-merged, not usrmerge), else the first).
#      debian:bookworm-slim is approximated by the installed packages of Priority "required" or
#      Essential "yes" (dpkg-query), which with their dependencies come close to its list.
#   3. For each binary, every library ldd resolves (except the vDSO, the dynamic loader and
#      the sanitizer runtimes, so that an ASan/UBSan build can be checked) must be owned
#      (dpkg -S) by a package of that set. Bookworm is merged-/usr: ldd prints /lib/... and
#      realpath gives /usr/lib/..., while dpkg knows a file under the path its package
#      shipped, so both spellings of both paths are tried.
# Needs apt's package lists (apt-get update) for the packages this host has not installed.
set -uo pipefail
# shellcheck source=../lib/assert.sh
. "$(dirname "$0")/../lib/assert.sh"
export LC_ALL=C

if [ $# -lt 2 ]; then
  echo "usage: $0 DOCKERFILE BINARY..." >&2
  exit 2
fi
dockerfile=$1
shift
[ -r "$dockerfile" ] || { echo "runtime_libs_test: cannot read $dockerfile" >&2; exit 2; }

# --- 1. The runtime stage's packages.
stage_packages() {
  awk '
    function flush(   nseg, seg, i, nw, w, j, apt, inst, skip) {
      nseg = split(buf, seg, /&&|\|\||;|\|/)
      for (i = 1; i <= nseg; i++) {
        nw = split(seg[i], w, /[ \t]+/)
        apt = 0; inst = 0; skip = 0
        for (j = 1; j <= nw; j++) {
          if (w[j] == "") continue
          if (!apt) { if (w[j] ~ /(^|\/)apt(-get)?$/) apt = 1; continue }
          if (skip) { skip = 0; continue }
          if (w[j] ~ /^-[otc]$/) { skip = 1; continue }   # options with an argument
          if (w[j] ~ /^-/) continue
          if (!inst) { if (w[j] == "install") inst = 1; else break; continue }
          gsub(/["\047]/, "", w[j]); sub(/[=\/].*/, "", w[j])  # pkg=version, pkg/release
          if (w[j] != "") print w[j]
        }
      }
      buf = ""
    }
    tolower($1) == "from" {
      if (buf != "") flush()
      in_stage = (NF >= 4 && tolower($(NF - 1)) == "as" && tolower($NF) == "runtime")
      next
    }
    !in_stage { next }
    /^[ \t]*#/ { next }                        # comment lines, also inside a continuation
    {
      line = $0
      cont = sub(/\\[ \t]*$/, "", line)
      buf = buf " " line
      if (!cont) flush()
    }
    END { if (buf != "") flush() }
  ' "$1" | sort -u
}
mapfile -t stage_pkgs < <(stage_packages "$dockerfile")
if [ ${#stage_pkgs[@]} -eq 0 ]; then
  fail "$dockerfile: no 'apt-get install' in a stage 'FROM ... AS runtime'"
  finish
  exit
fi

# --- 2. Every package the image will have.
# The base image: see the header (an approximation of debian:bookworm-slim from this host).
mapfile -t base_pkgs < <(dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Priority} ${Essential}\n' |
  awk '$1 ~ /^ii/ && ($3 == "required" || $4 == "yes") { print $2 }' | sort -u)

# Prints "pkg NAME" for each package of the closure, "unknown NAME" for a root apt does not know.
image_packages() {
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$@" 2>/dev/null |
  awk -v roots="$*" '
    FNR == NR { host[$1] = 1; next }               # first file: what this host has installed
    function bare(s) { gsub(/[<>]/, "", s); sub(/:.*/, "", s); return s }
    function add(p) { if (!(p in have)) { have[p] = 1; queue[++qn] = p } }
    # The package of set S (have or host) that satisfies a dependency on t, or "".
    function in_set(t, S,   k) {
      if (real[t] && t in S) return t
      for (k = 1; k <= nprov[t]; k++) if (prov[t, k] in S) return prov[t, k]
      return ""
    }
    function first(t) { return real[t] ? t : (nprov[t] ? prov[t, 1] : "") }
    /^[^ ]/ { cur = bare($0); alt = 0; if ($0 !~ /^</) real[cur] = 1; next }
    /^ [ |](Pre)?Depends: / {
      dep = bare($2)
      if (!alt) ng[cur]++
      grp[cur, ng[cur], ++na[cur, ng[cur]]] = dep
      alt = (substr($0, 2, 1) == "|")
      next
    }
    /^    [^ ]/ {                                # a provider of the dependency above it
      p = bare($1)
      if (!((dep, p) in isprov)) { isprov[dep, p] = 1; prov[dep, ++nprov[dep]] = p }
      next
    }
    END {
      n = split(roots, r, " ")
      for (i = 1; i <= n; i++) {
        if (real[r[i]]) add(r[i]); else print "unknown " r[i]
      }
      for (q = 1; q <= qn; q++) {
        p = queue[q]
        for (g = 1; g <= ng[p]; g++) {
          chosen = ""
          for (a = 1; a <= na[p, g] && chosen == ""; a++) chosen = in_set(grp[p, g, a], have)
          for (a = 1; a <= na[p, g] && chosen == ""; a++) chosen = in_set(grp[p, g, a], host)
          for (a = 1; a <= na[p, g] && chosen == ""; a++) chosen = first(grp[p, g, a])
          if (chosen != "") add(chosen)
        }
      }
      for (p in have) print "pkg " p
    }' <(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' | awk '$1 ~ /^ii/ { print $2 }') - | sort
}
declare -A in_image=()
unknown=()
while read -r kind name; do
  if [ "$kind" = pkg ]; then in_image[$name]=1; else unknown+=("$name"); fi
done < <(image_packages "${stage_pkgs[@]}" "${base_pkgs[@]}")
for p in "${unknown[@]}"; do
  fail "$dockerfile: the runtime stage installs '$p', which apt does not know (a typo? or run apt-get update)"
done
echo "runtime stage: ${#stage_pkgs[@]} packages; the image: ${#in_image[@]}" \
  "with dependencies and the base (${#base_pkgs[@]} required/essential)"

# --- 3. Each binary's libraries.
# The other spelling of a path on merged-/usr (/lib/x <-> /usr/lib/x, likewise bin, sbin, lib64).
usr_alias() {
  case $1 in
    /usr/lib/* | /usr/lib64/* | /usr/bin/* | /usr/sbin/*) echo "${1#/usr}" ;;
    /lib/* | /lib64/* | /bin/* | /sbin/*) echo "/usr$1" ;;
  esac
}

declare -A bin_libs=() candidates=()
for bin in "$@"; do
  if [ ! -x "$bin" ]; then
    bin_libs[$bin]=MISSING
    continue
  fi
  out=$(ldd "$bin" 2>&1)
  if grep -q -e 'not a dynamic executable' -e 'statically linked' <<<"$out"; then
    bin_libs[$bin]=STATIC
    continue
  fi
  libs=""
  while read -r soname arrow path _; do
    [ "$arrow" = "=>" ] || continue                    # linux-vdso.so.1, ld-linux-x86-64.so.2
    case $soname in
      ld-linux*) continue ;;
      libasan.so* | libhwasan.so* | libubsan.so* | liblsan.so* | libtsan.so*) continue ;;
    esac
    if [ "$path" = not ]; then                          # "libfoo.so.1 => not found"
      libs+="$soname=NOTFOUND "
      continue
    fi
    libs+="$soname=$path "
    real=$(realpath -e "$path" 2>/dev/null || echo "$path")
    for c in "$real" "$path" "$(usr_alias "$real")" "$(usr_alias "$path")"; do
      [ -n "$c" ] && candidates[$c]=1
    done
  done <<<"$out"
  bin_libs[$bin]=$libs
done

# One dpkg -S for every candidate path: owners[path]="pkg1 pkg2" (architecture qualifiers dropped).
declare -A owners=()
if [ ${#candidates[@]} -gt 0 ]; then
  while IFS= read -r line; do
    case $line in "diversion by "*) continue ;; esac
    pkgs=${line%%: /*}
    file=/${line#*: /}
    pkgs=$(sed -e 's/:[a-z0-9_-]*//g' -e 's/,/ /g' <<<"$pkgs")
    owners[$file]=$(xargs <<<"$pkgs")
  done < <(dpkg -S "${!candidates[@]}" 2>/dev/null | sort)
fi

# The verdicts, kept in order ("pass|fail|note<TAB>text", "add<TAB>binary<TAB>soname<TAB>package")
# so that the advice can say which missing package brings another one along.
report=()
declare -A lacking=()
for bin in "$@"; do
  name=$(basename "$bin")
  case ${bin_libs[$bin]} in
    MISSING) report+=("fail	$name: $bin is not an executable file (not built?)"); continue ;;
    STATIC) report+=("pass	$name: statically linked, no shared libraries"); continue ;;
  esac
  read -r -a entries <<<"${bin_libs[$bin]}"
  total=${#entries[@]}
  missing=()
  declare -A from=()
  for e in "${entries[@]}"; do
    soname=${e%%=*}
    path=${e#*=}
    if [ "$path" = NOTFOUND ]; then
      report+=("note	$name: $soname is not found by ldd on this host")
      missing+=("(not found)")
      continue
    fi
    real=$(realpath -e "$path" 2>/dev/null || echo "$path")
    own=""
    for c in "$real" "$path" "$(usr_alias "$real")" "$(usr_alias "$path")"; do
      if [ -n "$c" ] && [ -n "${owners[$c]:-}" ]; then own=${owners[$c]}; break; fi
    done
    if [ -z "$own" ]; then
      report+=("note	$name: $soname ($path) belongs to no Debian package: the runtime image cannot provide it")
      missing+=("(no package)")
      continue
    fi
    ok=""
    for p in $own; do
      if [ -n "${in_image[$p]:-}" ]; then ok=$p; break; fi
    done
    if [ -n "$ok" ]; then
      from[$ok]=1
    else
      pkg=${own%% *}
      report+=("add	$name	$soname	$pkg")
      lacking[$pkg]=1
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    report+=("pass	$name: $total/$total shared libraries in the runtime image (from ${#from[@]} packages)")
  else
    report+=("fail	$name: ${#missing[@]} of $total shared libraries are not in the runtime image: $(printf '%s\n' "${missing[@]}" | sort -u | xargs)")
  fi
  unset from
done

# A missing package that another missing one depends on (libbrotli1 under libcpprest2.10) comes
# along with it: say so, so that the fix is the one package, not both.
declare -A brought_by=()
for p in "${!lacking[@]}"; do
  while read -r kind dep; do
    if [ "$kind" = pkg ] && [ "$dep" != "$p" ] && [ -n "${lacking[$dep]:-}" ] &&
      [ -z "${brought_by[$dep]:-}" ]; then
      brought_by[$dep]=$p
    fi
  done < <(image_packages "$p")
done

for r in "${report[@]}"; do
  IFS=$'\t' read -r kind a b c <<<"$r"
  case $kind in
    pass) pass "$a" ;;
    fail) fail "$a" ;;
    note) echo "$a" ;;
    add)
      hint=""
      [ -n "${brought_by[$c]:-}" ] && hint=" (or add ${brought_by[$c]}, which depends on it)"
      echo "$a: $b (from package $c) is not in the runtime image: add $c to the Dockerfile's runtime stage$hint"
      ;;
  esac
done
finish
