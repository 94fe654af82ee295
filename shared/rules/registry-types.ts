import type { RegistryConfig, RegistryType } from './config-schema.js';

/** How registries of one type differ from the distribution spec, where it matters to a copy. */
interface TypeTraits {
  /**
   * Chunked uploads (POST, PATCH..., PUT) work. Not on ECR: it wants non-final PATCH parts of
   * 5 MB or more and has answered later PATCH bodies as discarded, so a blob goes in one
   * streamed PUT there, whatever `copy_by_chunk` says.
   */
  chunkedUploads: boolean;
}

const DEFAULT_TRAITS: TypeTraits = { chunkedUploads: true };
const TRAITS: Partial<Record<RegistryType, Partial<TypeTraits>>> = {
  'aws-ecr': { chunkedUploads: false },
};

export function traitsOf(type: RegistryType): TypeTraits {
  return { ...DEFAULT_TRAITS, ...TRAITS[type] };
}

/** Chunk size of `copy_by_chunk` when the destination sets none (Harbor's default). */
const DEFAULT_CHUNK = 10 * 1024 * 1024;

/** The chunk size a rule's copies upload in at `destination`; undefined: one streamed PUT per blob. */
export function uploadChunkSize(copyByChunk: boolean, destination: RegistryConfig): number | undefined {
  if (!copyByChunk || !traitsOf(destination.type).chunkedUploads) return undefined;
  return destination.chunk_size ?? DEFAULT_CHUNK;
}
