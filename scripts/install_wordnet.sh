#!/usr/bin/env bash
# Install the WordNet 3.0 database where NLTK finds it, without NLTK's downloader.
#
# Usage: scripts/install_wordnet.sh DEST     (then export NLTK_DATA=DEST)
#
# Debian's wordnet-base and wordnet-sense-index ship the same WordNet 3.0 files NLTK's reader
# loads; NLTK refuses corpus roots outside its data paths, so they are copied into
# DEST/corpora/wordnet/, and the `lexnames` file Debian leaves out is written there.
# Idempotent: apt-get runs only when /usr/share/wordnet lacks the files, and a finished DEST
# is left alone. See docs/metrics.md (METEOR).
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 DEST   (WordNet goes to DEST/corpora/wordnet; set NLTK_DATA=DEST)" >&2
    exit 2
fi
dest_root="$1"
source_dir=/usr/share/wordnet
target_dir="$dest_root/corpora/wordnet"

install_debian_packages() {
    local packages=(wordnet-base wordnet-sense-index)
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        if command -v sudo >/dev/null; then sudo=(sudo); else
            echo "install_wordnet: need root (or sudo) to apt-get install ${packages[*]}" >&2
            exit 1
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    if ! "${sudo[@]}" apt-get install -y -q "${packages[@]}" >/dev/null; then
        "${sudo[@]}" apt-get update -q >/dev/null
        "${sudo[@]}" apt-get install -y -q "${packages[@]}" >/dev/null
    fi
}

write_lexnames() {
    # The 45 lexicographer files in WordNet's own order; category 1 noun, 2 verb, 3 adj, 4 adv.
    local names=(
        adj.all:3 adj.pert:3 adv.all:4 noun.Tops:1 noun.act:1 noun.animal:1 noun.artifact:1
        noun.attribute:1 noun.body:1 noun.cognition:1 noun.communication:1 noun.event:1
        noun.feeling:1 noun.food:1 noun.group:1 noun.location:1 noun.motive:1 noun.object:1
        noun.person:1 noun.phenomenon:1 noun.plant:1 noun.possession:1 noun.process:1
        noun.quantity:1 noun.relation:1 noun.shape:1 noun.state:1 noun.substance:1 noun.time:1
        verb.body:2 verb.change:2 verb.cognition:2 verb.communication:2 verb.competition:2
        verb.consumption:2 verb.contact:2 verb.creation:2 verb.emotion:2 verb.motion:2
        verb.perception:2 verb.possession:2 verb.social:2 verb.stative:2 verb.weather:2 adj.ppl:3
    )
    local number=0 entry
    for entry in "${names[@]}"; do
        printf '%02d\t%s\t%s\n' "$number" "${entry%%:*}" "${entry##*:}"
        number=$((number + 1))
    done > "$1"
}

if [[ ! -f $source_dir/data.noun || ! -f $source_dir/index.sense ]]; then
    install_debian_packages
fi
mkdir -p "$target_dir"
cp -rL "$source_dir/." "$target_dir/"
write_lexnames "$target_dir/lexnames"
echo "WordNet 3.0 installed in $target_dir (set NLTK_DATA=$dest_root)"
