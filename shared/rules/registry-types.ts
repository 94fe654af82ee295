import type { RegistryConfig, RegistryType } from './config-schema.js';

/** How registries of one type differ from the distribution spec, where it matters to a copy. */
interface TypeTraits {
  /**
   * Chunked uploads (POST, PATCH..., PUT) work. Not on ECR: it wants non-final PATCH parts of
   * 5 MB or more and has answered later PATCH bodies as discarded, so a blob goes in one
   * streamed PUT there, whatever `copy_by_chunk` says.
   */
  chunkedUploads: boolean;
  /**
   * A blob may go as the body of the final `PUT ?digest=`. Not to Artifactory: Harbor's jfrog
   * adapter pushes every blob as one PATCH, then the PUT without a body, and so do we there.
   */
  bodyInPut: boolean;
}

const DEFAULT_TRAITS: TypeTraits = { chunkedUploads: true, bodyInPut: true };
const TRAITS: Partial<Record<RegistryType, Partial<TypeTraits>>> = {
  'aws-ecr': { chunkedUploads: false },
  'jfrog-artifactory': { bodyInPut: false },
};

export function traitsOf(type: RegistryType): TypeTraits {
  return { ...DEFAULT_TRAITS, ...TRAITS[type] };
}

/** Chunk size of `copy_by_chunk` when the destination sets none (Harbor's default). */
const DEFAULT_CHUNK = 10 * 1024 * 1024;

/** A chunk no blob reaches: the whole blob in one PATCH. */
const WHOLE_BLOB = Number.MAX_SAFE_INTEGER;

/** The chunk size a rule's copies upload in at `destination`; undefined: one streamed PUT per blob. */
export function uploadChunkSize(copyByChunk: boolean, destination: RegistryConfig): number | undefined {
  const traits = traitsOf(destination.type);
  if (copyByChunk && traits.chunkedUploads) return destination.chunk_size ?? DEFAULT_CHUNK;
  return traits.bodyInPut ? undefined : WHOLE_BLOB;
}
